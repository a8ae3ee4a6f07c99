"""The rehearsal's bundled data: a real table that scikit-learn ships, written as a team would upload it.

The Wisconsin diagnostic breast cancer table (569 tumours, 30 measurements, diagnosis malignant or
benign; `sklearn.datasets.load_breast_cancer`, UCI ML repository) becomes a CSV with a header, a text
target named `diagnosis` and a `sample_id` column of identifiers, which the transform must recognise and
leave out. Its broken twin is the same rows as a European spreadsheet exports them: measurements with
decimal commas, quoted, which the transform refuses with a rejection report instead of reading 17,99 as
text or as 1799.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATASET = "breast-cancer"
TARGET = "diagnosis"


@dataclass(frozen=True)
class Upload:
    dataset: str
    name: str
    body: bytes

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.name}"


@dataclass(frozen=True)
class SampleDataset:
    dataset: str
    # raw/<dataset>/dataset.json, the dataset's own settings (transform/dataset_settings.py).
    settings: dict[str, Any]
    good: Upload
    # An upload the transform must refuse, to show a rejection report.
    broken: Upload | None

    @property
    def settings_body(self) -> bytes:
        return json.dumps(self.settings, indent=2).encode()


def _rows() -> tuple[list[str], list[list[str]]]:
    from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]

    data = load_breast_cancer()
    header = ["sample_id", *[str(name) for name in data.feature_names], TARGET]
    rows = [
        [f"WDBC-{i + 1:04d}", *(repr(float(v)) for v in values), str(data.target_names[label])]
        for i, (values, label) in enumerate(zip(data.data, data.target, strict=True))
    ]
    return header, rows


def _csv(header: list[str], rows: list[list[str]], *, quote_all: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def sample_dataset() -> SampleDataset:
    header, rows = _rows()
    european = [[row[0], *(v.replace(".", ",") for v in row[1:-1]), row[-1]] for row in rows[:100]]
    return SampleDataset(
        dataset=DATASET,
        settings={"targetColumn": TARGET},
        good=Upload(DATASET, "wdbc.csv", _csv(header, rows)),
        broken=Upload(DATASET, "wdbc-excel-export.csv", _csv(header, european, quote_all=True)),
    )


def user_dataset(path: Path, *, dataset: str | None, settings: dict[str, Any]) -> SampleDataset:
    """A CSV the user names, uploaded as its dataset's first file."""
    name = dataset or path.stem.lower().replace(" ", "-").replace("_", "-")
    return SampleDataset(
        dataset=name, settings=settings, good=Upload(name, path.name, path.read_bytes()), broken=None
    )
