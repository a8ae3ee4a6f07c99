"""The benchmark still runs end to end: a change to the function's configuration or code that breaks it
is caught here, not at the next `make bench`. Its figures are a report, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

from tools import benchmark


def test_benchmark_measures_every_engine_on_a_small_file(tmp_path: Path) -> None:
    report = tmp_path / "result.json"
    assert benchmark.main(["--sizes", "1", "--repeat", "1", "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    (size,) = result["sizes"]
    assert set(size["measurements"]) == set(benchmark.MEASUREMENTS)
    assert not size["failures"]
    first = size["measurements"][benchmark.TRANSFORM_FIRST]
    later = size["measurements"][benchmark.TRANSFORM_LATER]
    assert first["detail"]["rows_read"] == first["rows"] > 0
    # The later upload reads the same file with the schema the first one stored, and learns none.
    assert later["detail"]["rows_read"] == first["detail"]["rows_read"]
    assert (first["detail"]["schema_learned"], later["detail"]["schema_learned"]) == (1, 0)
    assert later["detail"]["train_rows"] == first["detail"]["train_rows"]
    assert benchmark.schema_file(Path(size["file"]["path"])).is_file()
    profile = size["measurements"][benchmark.PROFILE]
    assert profile["detail"]["rows_read"] == first["rows"]
    assert {"later_over_first_mb_per_s", "first_over_pandas_mb_per_s", "later_over_pandas_mb_per_s"} <= set(
        size["ratios"]
    )
    # Every speed and memory target is checked for both kinds of upload.
    targets = [t["target"] for t in result["targets"]]
    assert "5 GB inside one 15-minute Lambda run, first upload" in targets, "a first upload is read twice"
    assert "10 GB inside one 15-minute Lambda run, later upload" in targets
    for kind in benchmark.TRANSFORMS.values():
        assert f"faster than pandas read-all, {kind}" in targets
        assert f"smaller than pandas read-all, {kind}" in targets
        assert f"memory flat in file size, {kind}" in targets
    assert len(result["cold_import_seconds"]["runs"]) == benchmark.IMPORT_RUNS
