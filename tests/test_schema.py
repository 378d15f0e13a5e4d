"""Label schemas: the shared labels.json format. Every refused schema and its exact
message: tests/reliability/test_bad_inputs.py."""
import pytest

from candist_core.records import Label, SchemaError
from candist_core.schema import build_schema, load_schema, save_schema


def test_loads_the_shared_datasets_label_files(trec_dir):
    schema = load_schema(trec_dir / "labels.json")
    assert schema.names == ["Abbreviation", "Entity", "Description", "Human", "Location",
                            "Numeric"]
    assert "TREC" in schema.task
    assert all(label.description for label in schema.labels)


def test_save_then_load_round_trips(tmp_path):
    schema = build_schema("t", [Label("a", "first"), Label("b", "")])
    save_schema(schema, tmp_path / "l.json")
    assert load_schema(tmp_path / "l.json") == schema


def test_names_are_trimmed():
    assert build_schema("", [" a ", "b"]).names == ["a", "b"]


def test_dropping_a_label_in_use_needs_confirmation():
    from candist_core.schema import check_replacement
    new = build_schema("t", ["a", "c"])
    with pytest.raises(SchemaError) as err:
        check_replacement({"a", "b"}, new, confirmed=False)
    assert str(err.value) == ("Refused: 'b' is used by existing annotations, decisions or "
                              "predictions. Confirm the migration to go on.")
    check_replacement({"a", "b"}, new, confirmed=True)
    check_replacement({"a"}, new, confirmed=False)


def test_labels_typed_one_per_line_need_no_json_file():
    from candist_core.schema import schema_from_lines
    schema = schema_from_lines(" Sort messages ", "billing: charges, invoices: and fees\n\n"
                                                  "  delivery  \nother:")
    assert schema.task == "Sort messages"
    assert schema.names == ["billing", "delivery", "other"]
    assert schema.labels[0].description == "charges, invoices: and fees"  # first colon only
    with pytest.raises(SchemaError, match="at least 2 labels"):
        schema_from_lines("", "only one\n")
    with pytest.raises(SchemaError, match="Duplicate label name"):
        schema_from_lines("", "Spam\nspam")
