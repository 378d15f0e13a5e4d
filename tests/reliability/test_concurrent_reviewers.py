"""Two processes recording decisions into one project at once: none lost, none doubled;
two processes claiming texts at once (team review leases): none shared."""
import json
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


CLAIMER = """
import json, sys, time
from candist_core.store import Store
store = Store(sys.argv[1], timeout=60)
project = store.get_project("p")
ids = [s.id for s in store.samples(project.id)]
who, deadline = sys.argv[2], time.time() + float(sys.argv[3])
done, finished = [], False
while time.time() < deadline:
    sid = store.claim_next(project.id, who, ids)
    if sid is None:
        finished = True
        break
    store.record_decision(project.id, sid, action="label", label="a", who=who,
                          note=str(len(done)))
    done.append(sid)
print(json.dumps({"done": done, "finished": finished}))
"""


def test_two_reviewers_claiming_at_once_never_share_a_text(tmp_path):
    """Two processes claim and decide as fast as they can for a few seconds: no text
    outside the overlap is decided twice, no overlap text by more than two, every reported
    decision is stored once, and (when both ran out of texts) every text is done."""
    db = tmp_path / "claims.db"
    with Store(db) as store:
        project = store.create_project("p", build_schema("t", ["a", "b"]))
        store.insert_samples(project.id, [(str(i), f"t{i}", None) for i in range(400)])
        store.set_overlap_share(project.id, 0.2)
        overlap = store.overlap_ids(project.id)
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(db), who, "8"], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for who in ("ann", "bob")]
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    with Store(db) as store:
        log = store.decision_log(project.id, limit=10_000)
        assert store.integrity_check() == "ok"
    by_sample = {}
    for d in log:
        by_sample.setdefault(d.sample_id, []).append(d.who)
    reported = {(who, sid) for who, out in zip(("ann", "bob"), outs) for sid in out["done"]}
    assert len(log) == len(reported) == sum(len(o["done"]) for o in outs)  # none lost/doubled
    assert {(d.who, d.sample_id) for d in log} == reported
    for sid, people in by_sample.items():
        assert len(people) == len(set(people))                 # nobody decided a text twice
        assert len(people) <= (2 if sid in overlap else 1), (sid, people)
    assert min(len(o["done"]) for o in outs) > 20              # both really ran at once
    if all(o["finished"] for o in outs):
        assert len(by_sample) == 400
        assert all(len(people) == (2 if sid in overlap else 1)
                   for sid, people in by_sample.items())
