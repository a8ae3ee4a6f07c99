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
    transform = size["measurements"][benchmark.TRANSFORM]
    assert transform["detail"]["rows_read"] == transform["rows"] > 0
    assert len(result["cold_import_seconds"]["runs"]) == benchmark.IMPORT_RUNS
