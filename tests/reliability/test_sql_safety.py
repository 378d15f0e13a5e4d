"""All SQL is parameterised: store.py is the only module that talks to SQLite, and the only
values it formats into SQL text are placeholders and integers it made itself; hostile
strings in texts, labels and decisions are stored and read back as plain data."""
import ast
from pathlib import Path

from candist_core.schema import build_schema
from candist_core.store import Store

CORE = Path(__file__).resolve().parents[2] / "candist_core"
SQL_CALLS = {"execute", "executemany", "executescript", "_rows", "_one", "_write", "query"}
HOSTILE = "x'); DROP TABLE samples; -- \" OR 1=1 /* %s {0} ?"


def formatted_values(tree: ast.AST):
    """(line, source) of every f-string piece passed as the SQL of a database call."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in SQL_CALLS \
                and node.args and isinstance(node.args[0], ast.JoinedStr):
            for value in node.args[0].values:
                if isinstance(value, ast.FormattedValue):
                    yield node.lineno, ast.unparse(value.value)


def test_only_the_store_module_talks_to_sqlite():
    users = sorted(p.name for p in CORE.glob("*.py")
                   if "sqlite" in p.read_text() and p.name != "store.py")
    assert users == []


def module_sql_constants(tree: ast.Module) -> set[str]:
    """Module-level NAME = "literal SQL" assignments (fragments written in the source)."""
    return {t.id for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for t in node.targets if isinstance(t, ast.Name) and t.id.isupper()}


def test_sql_text_never_embeds_a_value_from_outside():
    tree = ast.parse((CORE / "store.py").read_text())
    pieces = list(formatted_values(tree))
    # '?,?,?' placeholders, the schema version and the busy timeout in ms, and SQL
    # fragments that are literals of the module itself
    allowed = {"marks", "target", "int(timeout * 1000)"} | module_sql_constants(tree)
    assert pieces and {source for _, source in pieces} <= allowed, pieces


def test_hostile_strings_are_stored_and_read_back_as_data(tmp_path):
    with Store(tmp_path / "h.db") as store:
        project = store.create_project("p", build_schema(HOSTILE, [HOSTILE, "b"]))
        store.insert_samples(project.id, [(HOSTILE, HOSTILE, HOSTILE)])
        sample = store.samples(project.id)[0]
        store.record_decision(project.id, sample.id, action="label", label=HOSTILE,
                              who=HOSTILE, note=HOSTILE)
        assert (sample.ext_id, sample.text) == (HOSTILE, HOSTILE)
        assert store.label_schema(project.id).names == [HOSTILE, "b"]
        assert store.current_decisions(project.id)[sample.id]["label"] == HOSTILE
        assert store.count_samples(project.id) == 1
        assert store.integrity_check() == "ok"
