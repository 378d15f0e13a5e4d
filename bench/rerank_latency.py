"""The learning loop's latency in the app: from the Nth decision on the Review page to the
queue re-ranked by the updated student, at 2,000 texts on this machine's CPU.

    .venv/bin/python bench/rerank_latency.py [--texts 2000] [--every 50] [--repeats 3]

A seeded 2,000-text sample of TREC's training split, the offline teacher (CA_all) and one
one-epoch full distillation (the update's cost does not depend on the full run's epochs)
make the start. For each setting of the continuous update (the offline teacher re-taught
first, the default; and not re-taught), on a copy of the start: the Review page (Streamlit's
AppTest, as a reviewer's browser would run it) is opened, N-1 decisions are recorded, the
Nth is a click on a label button, and the page is re-run every 50 ms until its queue is
ranked by a new student run. Printed, one JSON line each: the seconds from the click to
the re-ranked queue, the update's own seconds (its run record) and the slowest page render
while it trained.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from distill_quality import read_split  # noqa: E402

from candist_core.distill import distill_project  # noqa: E402
from candist_core.encoder import shared_encoder  # noqa: E402
from candist_core.importing import ImportOptions, import_csv  # noqa: E402
from candist_core.schema import load_schema  # noqa: E402
from candist_core.store import Store  # noqa: E402
from candist_core.student import StudentConfig  # noqa: E402
from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def build(folder: Path, texts: int) -> Path:
    frame = read_split("trec", "train", texts)
    frame.to_csv(folder / "pool.csv", index=False)
    db = folder / "start.db"
    with Store(db) as store:
        project = store.create_project("trec", load_schema(DATASETS / "trec" / "labels.json"))
        import_csv(store, project.id, folder / "pool.csv",
                   options=ImportOptions(gold_col="label"))
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all"))
        distill_project(store, project.id, StudentConfig(epochs=1))
    return db


def measure(start: Path, dest: Path, *, every: int, teach: bool) -> dict:
    from streamlit.testing.v1 import AppTest
    shutil.copytree(start.parent, dest)
    db = dest / start.name
    os.environ["CANDIST_DB"] = str(db)
    with Store(db) as store:
        pid = store.get_project("trec").id
        store.set_update_every(pid, every)
        store.set_teach_on_update(pid, teach)
        base = store.latest_student_run(pid).id
        samples = store.samples(pid)
        for s in samples[:every - 1]:
            store.record_decision(pid, s.id, action="label", label=s.gold, who="reviewer")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("views/review.py")
    at.run()
    assert not at.exception, at.exception
    button = next(b for b in at.button if b.key and b.key.startswith("label-"))
    clicked = time.perf_counter()
    button.click()
    at.run()
    renders = []
    while at.session_state["queue_key"][-1] == base:
        time.sleep(0.05)
        t = time.perf_counter()
        at.run()
        renders.append(time.perf_counter() - t)
        assert not at.exception, at.exception
        if time.perf_counter() - clicked > 600:
            raise RuntimeError("no re-ranked queue within 10 minutes")
    seconds = time.perf_counter() - clicked
    with Store(db) as store:
        run = store.latest_student_run(pid)
        taught = run.config.get("taught_teacher") or {}
        return {"teach": teach, "decisions": every, "to_reranked_queue_s": round(seconds, 2),
                "update_s": run.epochs[-1].get("seconds") if run.epochs else None,
                "teach_s": taught.get("seconds"),
                "slowest_render_s": round(max(renders), 3) if renders else None,
                "renders": len(renders)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "start").mkdir()
        started = time.perf_counter()
        start = build(tmp / "start", args.texts)
        print(json.dumps({"bench": "rerank_latency", "texts": args.texts,
                          "cpu_count": os.cpu_count(),
                          "build_s": round(time.perf_counter() - started, 1)}), flush=True)
        for r in range(args.repeats):
            for teach in (True, False):
                record = measure(start, tmp / f"run-{r}-{teach}", every=args.every, teach=teach)
                print(json.dumps({**record, "repeat": r}), flush=True)


if __name__ == "__main__":
    main()
