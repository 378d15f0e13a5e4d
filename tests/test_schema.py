"""Label schemas: the shared labels.json format and every validation message."""
import json

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


@pytest.mark.parametrize("labels, message", [
    (["only"], "A label schema needs at least 2 labels, got 1."),
    ([], "A label schema needs at least 2 labels, got 0."),
    (["Spam", " spam "], "Duplicate label name 'spam' (same as 'Spam' after trimming and "
                         "ignoring case)."),
    (["a", "  "], "Label #2 has an empty name."),
    ([{"description": "x"}, "b"], "Label #1 has no 'name' field."),
    ([3, "b"], "Label #1 must be an object with a 'name', got int."),
    ([f"l{i}" for i in range(1001)], "A label schema may have at most 1000 labels, got 1001."),
])
def test_invalid_schemas_are_refused_with_a_clear_message(labels, message):
    with pytest.raises(SchemaError) as err:
        build_schema("task", labels)
    assert str(err.value) == message


def test_five_hundred_labels_are_fine():
    assert len(build_schema("t", [f"label {i}" for i in range(500)]).labels) == 500


def test_malformed_json_names_the_position(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('{"labels": [', encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        load_schema(path)
    assert str(err.value) == (f"Label file {path} is not valid JSON: Expecting value at "
                              f"line 1, column 13.")


@pytest.mark.parametrize("content, message", [
    ([1, 2], "labels.json must hold an object with 'task' and 'labels'."),
    ({"task": "x"}, "labels.json must have a 'labels' list."),
    ({"task": 3, "labels": ["a", "b"]}, "labels.json: 'task' must be text."),
])
def test_wrong_shapes_are_refused(tmp_path, content, message):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        load_schema(path)
    assert str(err.value) == message


def test_missing_file(tmp_path):
    with pytest.raises(SchemaError) as err:
        load_schema(tmp_path / "nope.json")
    assert str(err.value) == f"Label file not found: {tmp_path / 'nope.json'}"


def test_dropping_a_label_in_use_needs_confirmation():
    from candist_core.schema import check_replacement
    new = build_schema("t", ["a", "c"])
    with pytest.raises(SchemaError) as err:
        check_replacement({"a", "b"}, new, confirmed=False)
    assert str(err.value) == ("Refused: 'b' is used by existing annotations, decisions or "
                              "predictions. Confirm the migration to go on.")
    check_replacement({"a", "b"}, new, confirmed=True)
    check_replacement({"a"}, new, confirmed=False)
