"""One encoding for training and serving: what the predict function sends the model for a record is the
line the transform wrote for the same record, without its target."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from shared.dataset_schema import DatasetSchema, Feature, FeatureKind, ProblemType, Target
from shared.encoding import ModelInput, RecordRejected, RowEncoder

CATEGORIES = st.lists(
    st.text(min_size=1, max_size=8).map(str.strip).filter(bool), min_size=1, max_size=5, unique=True
)
# What a CSV field or a JSON value's text may hold for a numeric column: numbers as people write them,
# missing markers, the column's own missing word.
NUMBER_TEXTS = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(["", "NA", "null", "NaN", " 1.5", "1_000", "-0", "3e5", "unknown", ".5", "+7", "1e39"]),
)
TIMESTAMP_TEXTS = st.one_of(
    st.builds(lambda moment, sep: moment.isoformat(sep=sep), st.datetimes(), st.sampled_from(["T", " "])),
    st.dates().map(str),
    st.sampled_from(
        ["", "NA", "unknown", "2024-02-30", "2024-01-31T10:00Z", "2024-01-31 23:59:59+02:00", "x"]
    ),
)


@st.composite
def schemas_and_rows(draw: st.DrawFn) -> tuple[DatasetSchema, list[str], list[list[str]]]:
    kinds = draw(
        st.lists(
            st.sampled_from(
                [FeatureKind.NUMERIC, FeatureKind.TIMESTAMP, FeatureKind.CATEGORICAL, FeatureKind.IGNORED]
            ),
            min_size=1,
            max_size=6,
        )
    )
    features = []
    for index, kind in enumerate(kinds):
        if kind is FeatureKind.CATEGORICAL:
            features.append(Feature(f"f{index}", kind, categories=tuple(draw(CATEGORIES))))
        elif kind in (FeatureKind.NUMERIC, FeatureKind.TIMESTAMP):
            features.append(Feature(f"f{index}", kind, missing=("unknown",)))
        else:
            features.append(Feature(f"f{index}", kind, reason="identifier"))
    if not any(f.kind is not FeatureKind.IGNORED for f in features):
        features.append(Feature("extra", FeatureKind.NUMERIC))
    columns = [f.name for f in features]
    target_at = draw(st.integers(0, len(columns)))
    columns.insert(target_at, "target")
    schema = DatasetSchema(
        tuple(columns), Target("target", ProblemType.BINARY, ("no", "yes")), tuple(features)
    )
    header = draw(st.permutations(columns))

    def value(name: str) -> st.SearchStrategy[str]:
        if name == "target":
            return st.sampled_from(["no", "yes"])
        feature = next(f for f in features if f.name == name)
        if feature.kind is FeatureKind.CATEGORICAL:
            return st.sampled_from(
                [*feature.categories, "never-seen", "", "NA", f" {feature.categories[0]} "]
            )
        if feature.kind is FeatureKind.NUMERIC:
            return NUMBER_TEXTS
        if feature.kind is FeatureKind.TIMESTAMP:
            return TIMESTAMP_TEXTS
        return st.text(max_size=5)

    rows = draw(st.lists(st.tuples(*(value(name) for name in header)).map(list), min_size=1, max_size=8))
    return schema, list(header), rows


def divergences(
    schema: DatasetSchema, header: list[str], rows: list[list[str]], served: ModelInput
) -> list[str]:
    """Rows the served encoder encodes, or refuses, otherwise than the transform."""
    transform = RowEncoder(schema, header)
    position = {name: index for index, name in enumerate(header)}
    found = []
    for row in rows:
        features = [row[position[f.name]] for f in schema.model_features]
        try:
            written: str | None = transform.encode(row).split(",", 1)[1]
        except RecordRejected:
            written = None
        try:
            sent: str | None = served.encode(features)
        except RecordRejected:
            sent = None
        if sent != written:
            found.append(f"{row}: transform {written!r}, predict {sent!r}")
    return found


@given(schemas_and_rows())
def test_predict_encoding_is_the_transforms_row_without_the_target(
    case: tuple[DatasetSchema, list[str], list[list[str]]],
) -> None:
    schema, header, rows = case
    assert divergences(schema, header, rows, ModelInput(schema)) == []


class CodesFromZero(ModelInput):
    """A serving encoder that drifted: categories coded from 0, the class convention."""

    def encode(self, values: Sequence[str]) -> str:
        codes = [
            str(f.categories.index(v)) if f.kind is FeatureKind.CATEGORICAL and v in f.categories else v
            for f, v in zip(self.features, values, strict=True)
        ]
        return ",".join([*codes, "1"])


class WithoutWidthMarker(ModelInput):
    """A serving encoder that drifted: it leaves out the constant last column the model was trained with."""

    def encode(self, values: Sequence[str]) -> str:
        return super().encode(values).rsplit(",", 1)[0]


def test_a_divergence_between_the_two_encodings_is_caught() -> None:
    schema = DatasetSchema(
        ("plan", "target"),
        Target("target", ProblemType.BINARY, ("no", "yes")),
        (Feature("plan", FeatureKind.CATEGORICAL, categories=("basic", "pro")),),
    )
    rows = [["pro", "yes"], ["basic", "no"]]
    assert divergences(schema, ["plan", "target"], rows, ModelInput(schema)) == []
    assert len(divergences(schema, ["plan", "target"], rows, CodesFromZero(schema))) == 2
    assert len(divergences(schema, ["plan", "target"], rows, WithoutWidthMarker(schema))) == 2
