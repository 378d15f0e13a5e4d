"""All SQL is parameterised: the store package is the only code that talks to SQLite, and
the only values it formats into SQL text are placeholders, integers it made itself and its
own literal fragments; hostile strings in texts, labels and decisions are stored and read
back as plain data."""
import ast
from pathlib import Path

from candist_core.schema import build_schema
from candist_core.store import Store

CORE = Path(__file__).resolve().parents[2] / "candist_core"
STORE = sorted((CORE / "store").glob("*.py"))
SQL_CALLS = {"execute", "executemany", "executescript", "query", "rows", "one", "scalar",
             "tuples", "write", "rows_where", "delete_where", "count_where"}
HOSTILE = "x'); DROP TABLE samples; -- \" OR 1=1 /* %s {0} ?"


def formatted_values(tree: ast.AST):
    """(line, source) of every f-string piece passed as the SQL of a database call."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in SQL_CALLS \
                and node.args and isinstance(node.args[0], ast.JoinedStr):
            for value in node.args[0].values:
                if isinstance(value, ast.FormattedValue):
                    yield node.lineno, ast.unparse(value.value)


def test_only_the_store_package_talks_to_sqlite():
    users = sorted(str(p.relative_to(CORE)) for p in CORE.rglob("*.py")
                   if "sqlite" in p.read_text() and p.parent.name != "store")
    assert users == []
    assert "connection.py" in {p.name for p in STORE}


def module_sql_constants(tree: ast.Module) -> set[str]:
    """Module-level NAME = literal assignments (SQL fragments written in the source, or
    dicts of them keyed by names the code checks)."""
    return {t.id for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, (ast.Constant, ast.Dict))
            for t in node.targets if isinstance(t, ast.Name) and t.id.isupper()}


def test_sql_text_never_embeds_a_value_from_outside():
    constants = set().union(*(module_sql_constants(ast.parse(p.read_text())) for p in STORE))
    pieces = [(p.name, line, source) for p in STORE
              for line, source in formatted_values(ast.parse(p.read_text()))]
    # '?,?,?' placeholders, the schema version and the busy timeout in ms, the columns a
    # store method names itself, and SQL fragments that are literals of the package
    allowed = {"','.join('?' * len(chunk))", "target", "int(timeout * 1000)", "select"}
    outside = [(name, line, source) for name, line, source in pieces
               if source not in allowed and source.split("[")[0] not in constants]
    assert pieces and outside == [], outside


def test_hostile_strings_are_stored_and_read_back_as_data(tmp_path):
    with Store(tmp_path / "h.db") as store:
        project = store.create_project("p", build_schema(HOSTILE, [HOSTILE, "b"]))
        store.insert_samples(project.id, [(HOSTILE, HOSTILE, HOSTILE)])
        sample = store.samples(project.id)[0]
        store.record_decision(project.id, sample.id, action="label", label=HOSTILE,
                              who=HOSTILE, note=HOSTILE)
        assert (sample.ext_id, sample.text) == (HOSTILE, HOSTILE)
        assert store.label_schema(project.id).names == [HOSTILE, "b"]
        assert store.current_decisions(project.id)[sample.id].label == HOSTILE
        assert store.count_samples(project.id) == 1
        assert store.integrity_check() == "ok"
