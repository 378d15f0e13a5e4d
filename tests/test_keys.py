"""Fixed review keys: defaults, saved keys, and the checks on keys a user types."""
import pytest

from candist_core.keys import KEY_POOL, assign_keys, check_keys
from candist_core.records import SchemaError
from candist_core.store import Store
from candist_core.schema import build_schema


def test_digits_then_letters_skipping_the_action_keys():
    names = [f"l{i}" for i in range(12)]
    keys = assign_keys(names)
    assert [keys[n] for n in names] == list("123456789abc")
    assert "s" not in KEY_POOL and "u" not in KEY_POOL and "0" not in KEY_POOL


def test_saved_keys_win_and_the_rest_fill_the_free_keys():
    keys = assign_keys(["a", "b", "c"], {"c": "1", "b": "x", "gone": "2"})
    assert keys == {"a": "2", "b": "x", "c": "1"}


def test_77_labels_run_out_of_keys():
    keys = assign_keys([f"l{i}" for i in range(77)])
    assert sum(k is not None for k in keys.values()) == len(KEY_POOL) == 33
    assert keys["l76"] is None


@pytest.mark.parametrize("keys, message", [
    ({"a": "s"}, "Key 's' of 'a' is reserved for skip."),
    ({"a": "!"}, "Key '!' of 'a' is not allowed: use one digit 1-9 or one letter."),
    ({"a": "1", "b": "1"}, "Key '1' is given to both 'a' and 'b'."),
])
def test_bad_keys_are_named(keys, message):
    with pytest.raises(SchemaError) as err:
        check_keys(keys)
    assert str(err.value) == message


def test_keys_are_stored_per_project_and_survive_replacing_the_labels(tmp_path):
    with Store(tmp_path / "k.db") as store:
        project = store.create_project("p", build_schema("t", ["a", "b"]))
        store.set_label_keys(project.id, check_keys({"a": "B", "b": ""}))
        store.replace_labels(project.id, build_schema("t", ["a", "b", "c"]))
        assert store.label_keys(project.id) == {"a": "b"}
        assert assign_keys(["a", "b", "c"], store.label_keys(project.id)) == \
            {"a": "b", "b": "1", "c": "2"}
