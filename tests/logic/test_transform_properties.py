"""Properties of the transform over generated CSVs: any valid file, in any dialect this pipeline reads,
comes out as rows that decode back to its values in the schema's order, split the same way every time,
and its schema and split depend on the set of its rows, not on their order."""

from __future__ import annotations

import codecs
import io
import math
from dataclasses import dataclass
from random import Random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import transform.pipeline
from shared.dataset_schema import DatasetSchema, FeatureKind, is_missing
from shared.encoding import CategoryField, NumberField
from tests.support.sinks import Lines
from transform.pipeline import FileRejected, TransformOptions, TransformOutcome, transform_csv
from transform.schema_inference import InferenceOptions

OPTIONS = TransformOptions(
    validation_fraction=0.2,
    max_rejected_fraction=0.0,
    inference=InferenceOptions("label", None, max_categories=10_000, numeric_tolerance=0.0),
    min_labeled_rows=2,
)
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Table:
    header: list[str]
    kinds: list[str]  # "numeric" or "categorical" per feature column
    rows: list[list[str]]


# Text the way people type it into spreadsheets: any printable unicode, commas, quotes, line ends, and
# sometimes very long; csv cannot carry NUL, and a category must hold a letter so it never reads as a number.
free_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\x00")
    | st.sampled_from(",\"'\n\r\t;"),
    max_size=40,
)
category = st.builds(
    lambda head, tail: head + tail, st.sampled_from(["a", "Ω", "z", "東"]), free_text
).filter(lambda text: not is_missing(text))
huge_category = st.integers(1000, 200_000).map(lambda size: "x" * size)


def number_text(value: float, style: int) -> str:
    return [
        repr(value),
        f"{value:.3f}",
        f"{value:e}",
        f" {value} ",
        str(int(value)) if abs(value) < 1e15 else repr(value),
    ][style]


# Numbers XGBoost holds: float32 magnitudes (a larger one is refused with its row).
number = st.floats(min_value=-(2.0**120), max_value=2.0**120, width=32)
numeric_cell = st.one_of(
    st.builds(number_text, number, st.integers(0, 4)),
    st.sampled_from(["", "NA", "null", "NaN", " ", "?"]),
)
column_name = st.text(
    alphabet=st.characters(whitelist_categories=["Lu", "Ll", "Nd"]), min_size=1, max_size=12
)


@st.composite
def tables(draw: st.DrawFn) -> Table:
    kinds = draw(st.lists(st.sampled_from(["numeric", "categorical"]), min_size=1, max_size=5))
    names = draw(
        st.lists(column_name, min_size=len(kinds), max_size=len(kinds), unique=True).filter(
            lambda n: "label" not in n
        )
    )
    target_at = draw(st.integers(0, len(kinds)))
    labels = draw(
        st.lists(category, min_size=2, max_size=2, unique_by=str.strip).filter(
            lambda ls: ls[0].strip() != ls[1].strip()
        )
    )
    row_count = draw(st.integers(20, 80))
    # At least two categories, each in at least two rows: a column of one value, or of values that occur
    # once, is rightly ignored.
    categories = {
        i: draw(st.lists(category | huge_category, min_size=2, max_size=6, unique_by=str.strip))
        for i, k in enumerate(kinds)
        if k == "categorical"
    }
    rows = []
    for index in range(row_count):
        cells = [
            (
                draw(st.builds(number_text, number, st.integers(0, 4)) if index < 2 else numeric_cell)
                if kind == "numeric"
                else categories[i][index % len(categories[i])]
                if index < 2 * len(categories[i])
                else draw(st.sampled_from(categories[i]))
            )
            for i, kind in enumerate(kinds)
        ]
        label = labels[index % 2] if index < 4 else draw(st.sampled_from(labels))
        rows.append([*cells[:target_at], label, *cells[target_at:]])
    header = [*names[:target_at], "label", *names[target_at:]]
    return Table(header, kinds, rows)


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    quote_all: bool
    line_end: str
    bom: bool

    def render(self, table: Table) -> bytes:
        """RFC 4180 with this dialect's delimiter and line end: a field is quoted when `quote_all`, or when
        it holds the delimiter, a quote or a line-end character (csv.writer leaves a bare CR unquoted when
        the line end is LF, which makes a file no reader can split correctly)."""
        special = {self.delimiter, '"', "\r", "\n"}

        def field(text: str) -> str:
            if self.quote_all or special & set(text):
                return '"' + text.replace('"', '""') + '"'
            return text

        lines = [self.delimiter.join(map(field, row)) for row in [table.header, *table.rows]]
        text = self.line_end.join(lines) + self.line_end
        return (codecs.BOM_UTF8 if self.bom else b"") + text.encode()


dialects = st.builds(
    Dialect,
    st.sampled_from([",", ";", "\t", "|"]),
    st.booleans(),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)


def run(data: bytes) -> tuple[TransformOutcome, Lines, Lines]:
    train, validation = Lines(), Lines()
    try:
        outcome = transform_csv(
            lambda: io.BytesIO(data), stored_schema=None, options=OPTIONS, train=train, validation=validation
        )
    except FileRejected as rejection:
        assume("too few to fill both" not in rejection.reason)
        raise
    return outcome, train, validation


def decode(schema: DatasetSchema, row: list[str]) -> tuple[object, ...]:
    """An encoded row read back into the values it stands for, in schema order."""
    values: list[object] = [schema.target.classes[int(row[0])]]
    assert row[-1] == "1", "every line ends with the width marker"
    for feature, cell in zip(schema.model_features, row[1:-1], strict=True):
        if cell == "":
            values.append(None)
        elif feature.kind is FeatureKind.NUMERIC:
            values.append(float(cell))
        else:
            values.append(feature.categories[int(cell) - 1])
    return tuple(values)


def expected(schema: DatasetSchema, table: Table, row: list[str]) -> tuple[object, ...]:
    by_name = dict(zip(table.header, row, strict=True))
    values: list[object] = [by_name["label"].strip()]
    for feature in schema.model_features:
        text = by_name[feature.name]
        if is_missing(text) or (feature.kind is FeatureKind.NUMERIC and math.isnan(float(text))):
            values.append(None)
        elif feature.kind is FeatureKind.NUMERIC:
            values.append(float(text))
        else:
            values.append(text.strip())
    return tuple(values)


@PROPERTY_SETTINGS
@given(tables(), dialects)
def test_every_row_decodes_back_to_its_values_in_schema_order(table: Table, dialect: Dialect) -> None:
    outcome, train, validation = run(dialect.render(table))

    schema = outcome.schema
    assert [f.name for f in schema.features] == [n for n in table.header if n != "label"]
    assert [f.kind.value for f in schema.features] == table.kinds
    assert outcome.rows_read == len(table.rows) and outcome.rejected_row_count == 0
    decoded = [decode(schema, row) for row in train.rows() + validation.rows()]
    assert sorted(map(repr, decoded)) == sorted(repr(expected(schema, table, row)) for row in table.rows)


@PROPERTY_SETTINGS
@given(tables(), dialects, st.integers(1, 50))
def test_the_same_file_splits_the_same_way_in_any_block_size(
    table: Table, dialect: Dialect, block: int
) -> None:
    data = dialect.render(table)
    _, train, validation = run(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transform.pipeline, "BLOCK_ROWS", block)
        _, train_again, validation_again = run(data)
    assert (train.data, validation.data) == (train_again.data, validation_again.data)


@PROPERTY_SETTINGS
@given(tables())
def test_line_ends_quoting_and_byte_order_mark_do_not_change_the_output(table: Table) -> None:
    outputs = {
        (bytes(run(dialect.render(table))[1].data), bytes(run(dialect.render(table))[2].data))
        for dialect in (
            Dialect(",", False, "\n", False),
            Dialect(";", True, "\r\n", True),
        )
    }
    assert len(outputs) == 1


@PROPERTY_SETTINGS
@given(tables(), dialects, st.randoms(use_true_random=False))
def test_the_schema_and_the_split_are_the_same_for_any_order_of_the_rows(
    table: Table, dialect: Dialect, random: Random
) -> None:
    outcome, train, validation = run(dialect.render(table))
    shuffled = Table(table.header, table.kinds, random.sample(table.rows, len(table.rows)))
    outcome_again, train_again, validation_again = run(dialect.render(shuffled))
    assert outcome_again.schema.digest == outcome.schema.digest
    assert sorted(train_again.data.splitlines()) == sorted(train.data.splitlines())
    assert sorted(validation_again.data.splitlines()) == sorted(validation.data.splitlines())


@PROPERTY_SETTINGS
@given(tables(), dialects)
def test_every_class_reaches_both_splits(table: Table, dialect: Dialect) -> None:
    outcome, _, _ = run(dialect.render(table))
    assert outcome.class_counts and all(
        sides["train"] and sides["validation"] for sides in outcome.class_counts.values()
    )


number_like = st.one_of(
    st.floats().map(repr),
    st.integers().map(str),
    st.text(alphabet="0123456789.eE+-_ \n", max_size=12),
    st.sampled_from(["", "NA", "inf", "-Infinity", "nan", "1e999", "1_000", "٣", "0x10", "1e05", ".5", "5."]),
    # Long mantissas with large exponents: finite or not, the fast path must agree with `one`.
    st.builds(
        lambda digits, exponent: "1" + "0" * digits + f"e{exponent}",
        st.integers(150, 300),
        st.integers(0, 99),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(number_like | st.sampled_from(["-", " - ", "unknown"]), max_size=30), st.booleans())
def test_numeric_fast_path_agrees_with_the_one_by_one_encoding(texts: list[str], with_markers: bool) -> None:
    field = NumberField(["-", "unknown"] if with_markers else [])
    fast = field.many(texts)
    if fast is not None:
        assert fast == [field.one(text) for text in texts]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(category, min_size=1, max_size=5, unique=True),
    st.lists(category | st.sampled_from(["", " NA "]), max_size=30),
)
def test_category_fast_path_agrees_with_the_one_by_one_encoding(known: list[str], texts: list[str]) -> None:
    assume(len({k.strip() for k in known}) == len(known))
    learned = CategoryField([k.strip() for k in known])
    slow = [learned.one(text) for text in texts]  # also teaches the fast path the spellings it met
    fast = learned.many(texts)
    assert fast is None or fast == slow
