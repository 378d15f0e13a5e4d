"""Two processes recording decisions into one project at once: none lost, none doubled."""
import os
import subprocess
import sys

from candist_core.schema import build_schema
from candist_core.store import Store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WRITER = """
import sys
from candist_core.store import Store
store = Store(sys.argv[1], timeout=60)
project = store.get_project("p")
ids = [s.id for s in store.samples(project.id)]
who = sys.argv[2]
for i, sid in enumerate(ids):
    store.record_decision(project.id, sid, action="label", label="a" if i % 2 else "b",
                          who=who, note=str(i))
print("ok")
"""


def test_two_processes_write_decisions_at_the_same_time(tmp_path):
    db = tmp_path / "c.db"
    with Store(db) as store:
        project = store.create_project("p", build_schema("t", ["a", "b"]))
        store.insert_samples(project.id, [(str(i), f"t{i}", None) for i in range(300)])
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), who], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for who in ("ann", "bob")]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs) and outs == ["ok\n", "ok\n"]
    with Store(db) as store:
        log = store.decision_log(project.id, limit=10_000)
        assert store.integrity_check() == "ok"
    assert len(log) == 600
    assert len({(r.who, r.note) for r in log}) == 600
    assert {r.who for r in log} == {"ann", "bob"}
