"""A process killed while writing decisions loses none it reported as saved."""
import os
import signal
import subprocess
import sys
import time

from candist_core.schema import build_schema
from candist_core.store import Store

WRITER = """
import sys
from candist_core.store import Store
store = Store(sys.argv[1])
project = store.get_project("p")
ids = [s.id for s in store.samples(project.id)]
i = 0
while True:
    sid = ids[i % len(ids)]
    did = store.record_decision(project.id, sid, action="label", label="a", who="w",
                                note=str(i))
    print(did, flush=True)
    i += 1
"""


def test_sigkill_during_decisions_loses_nothing_reported(tmp_path):
    db = tmp_path / "c.db"
    with Store(db) as store:
        project = store.create_project("p", build_schema("t", ["a", "b"]))
        store.insert_samples(project.id, [(str(i), f"t{i}", None) for i in range(50)])
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE,
                            text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    reported = []
    deadline = time.time() + 60
    while len(reported) < 300 and time.time() < deadline:
        reported.append(int(proc.stdout.readline()))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(reported) >= 300
    with Store(db) as store:
        assert store.integrity_check() == "ok"
        saved = {r["id"] for r in store.decision_log(project.id, limit=1_000_000)}
    assert set(reported) <= saved
