"""The part files as SageMaker's built-in XGBoost reads them in training.

The 3.0-5 container sniffs the delimiter from the first line of the channel's first file with
`csv.Sniffer` (aws/sagemaker-xgboost-container, release-3.0.5:src/sagemaker_xgboost_container/
data_utils.py:147-153) and loads the channel with `xgb.DMatrix("<dir>?format=csv&label_column=0&
delimiter=<d>")` (data_utils.py:294-321), with xgboost 3.0.5 (docker/3.0-5/base/Dockerfile.cpu). That
reader keeps rows sparse and counts a file's columns up to the last value it holds, so a last column that
is empty in every row of a run is no column at all: the model would be trained one feature short, and the
validation channel, if wider, fails the job ("Number of columns does not match"). The tests here read our
files with that same reader.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import xgboost

from shared.dataset_schema import DatasetSchema
from tests.support.sinks import Lines
from transform.pipeline import TransformOptions, TransformOutcome, transform_csv
from transform.schema_inference import InferenceOptions

OPTIONS = TransformOptions(
    validation_fraction=0.2,
    max_rejected_fraction=0.01,
    inference=InferenceOptions("target", None, max_categories=1000, numeric_tolerance=0.01),
    min_labeled_rows=50,
)


def transform(data: bytes, stored: DatasetSchema | None = None) -> tuple[TransformOutcome, bytes, bytes]:
    train, validation = Lines(), Lines()
    outcome = transform_csv(
        lambda: io.BytesIO(data), stored_schema=stored, options=OPTIONS, train=train, validation=validation
    )
    return outcome, bytes(train.data), bytes(validation.data)


def read_channel(directory: Path, part: bytes) -> xgboost.DMatrix:
    """A channel of one part file, read as the container reads it."""
    directory.mkdir()
    (directory / "part-00000.csv").write_bytes(part)
    delimiter = csv.Sniffer().sniff(part.decode().split("\n", 1)[0]).delimiter
    return xgboost.DMatrix(f"{directory}?format=csv&label_column=0&delimiter={delimiter}")


def table(rows: int, last: str | None) -> bytes:
    """A table whose last column `z` holds a number in every row, or nothing (`last` None)."""
    lines = ["x,colour,z,target"]
    for i in range(rows):
        z = f"{i % 13}.5" if last is None else last
        lines.append(f"{i % 31},{['red', 'blue', 'green'][i % 3]},{z},{'yes' if i % 4 else 'no'}")
    return ("\n".join(lines) + "\n").encode()


def test_a_run_whose_last_feature_is_empty_in_every_row_keeps_the_models_width(tmp_path: Path) -> None:
    first, train, validation = transform(table(600, last=None))
    width = len(first.schema.model_features) + 1  # the width marker
    assert [f.name for f in first.schema.model_features][-1] == "z"
    assert read_channel(tmp_path / "first-train", train).num_col() == width

    later, train, validation = transform(table(400, last=""), stored=first.schema)
    for name, part, rows in (
        ("train", train, later.train_rows),
        ("validation", validation, later.validation_rows),
    ):
        matrix = read_channel(tmp_path / name, part)
        assert (matrix.num_col(), matrix.num_row()) == (width, rows), name


def test_without_the_width_marker_the_reader_drops_an_empty_last_column(tmp_path: Path) -> None:
    """The reader's behaviour the marker exists for: the same lines without it are one column short."""
    first, _, _ = transform(table(600, last=None))
    _, train, _ = transform(table(400, last=""), stored=first.schema)
    unmarked = b"".join(line.rsplit(b",", 1)[0] + b"\n" for line in train.splitlines())
    assert read_channel(tmp_path / "unmarked", unmarked).num_col() == len(first.schema.model_features) - 1


def test_the_container_reads_our_labels_and_values(tmp_path: Path) -> None:
    outcome, train, _ = transform(table(600, last=None))
    matrix = read_channel(tmp_path / "train", train)
    rows = [line.split(",") for line in train.decode().splitlines()]
    assert list(matrix.get_label()) == [float(row[0]) for row in rows]
    assert set(matrix.get_label()) == {0.0, 1.0}, "binary labels are 0 and 1"
    assert outcome.schema.target.classes == ("no", "yes")
