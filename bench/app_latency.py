"""Page latency with a 100,000-sample project: render the Review page, record a decision.

    .venv/bin/python bench/app_latency.py [--samples 100000]

Uses Streamlit's AppTest in-process (the same script run a browser triggers, without the
websocket). Candidate sets and student predictions are synthetic but stored through the
real store. Prints one JSON object; goals: review first render and Data-page search under
1 second, a decision under 100 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from candist_core.importing import ImportOptions, import_csv  # noqa: E402
from candist_core.metrics import entropy  # noqa: E402
from candist_core.schema import load_schema  # noqa: E402
from candist_core.store import Store  # noqa: E402

TREC = ROOT.parent / "shared" / "datasets" / "trec"


def build(db: Path, n: int) -> None:
    frame = pd.read_csv(TREC / "train.csv", dtype=str, keep_default_na=False)
    frame = pd.concat([frame] * (-(-n // len(frame))), ignore_index=True).iloc[:n]
    frame.insert(0, "id", [f"r{i}" for i in range(n)])
    path = db.parent / "big.csv"
    frame.to_csv(path, index=False)
    rng = np.random.default_rng(0)
    with Store(db) as store:
        schema = load_schema(TREC / "labels.json")
        project = store.create_project("big", schema)
        import_csv(store, project.id, path, options=ImportOptions(gold_col="label", id_col="id"))
        ids = [s.id for s in store.samples(project.id)]
        names = schema.names
        probs = rng.dirichlet(np.ones(len(names)) * 0.5, size=n).astype(np.float32)
        run = store.create_teacher_run(project.id, teacher="offline", model="synthetic",
                                       strategy="ca_all", params={})
        rows = []
        for sid, p in zip(ids, probs):
            order = np.argsort(-p)
            keep = [names[j] for j in order if p[j] >= 0.3 * p[order[0]]]
            rows.append({"sample_id": sid, "candidates": keep, "label": keep[0],
                         "confidence": float(p[order[0]])})
        store.record_annotations(run, rows)
        store.set_teacher_run_status(run, "done")
        student = store.create_student_run(project.id, teacher_run_id=run, method="candist",
                                           config={})
        flags = np.zeros(n, dtype=bool)
        noisy = rng.dirichlet(np.ones(len(names)), size=n).astype(np.float32)
        store.write_predictions(student, ids, noisy, names, entropy=entropy(noisy),
                                out_of_candidate=flags,
                                high_confidence=flags, small_loss=flags)
        store.finish_student_run(student, status="done", best_epoch=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=10)
    args = parser.parse_args()
    from streamlit.testing.v1 import AppTest
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "big.db"
        start = time.perf_counter()
        build(db, args.samples)
        build_s = time.perf_counter() - start
        os.environ["CANDIST_DB"] = str(db)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page("views/review.py")
        start = time.perf_counter()
        at.run()
        first_render = time.perf_counter() - start
        assert not at.exception, at.exception
        decisions = []
        for _ in range(args.decisions):
            button = next(b for b in at.button if b.key and b.key.startswith("label-"))
            start = time.perf_counter()
            button.click()
            at.run()
            decisions.append(time.perf_counter() - start)
        renders = {}
        # "annotate" twice: its first render also imports torch and transformers (once per
        # server process); the second is the steady state.
        for name in ("predictions", "export", "home", "annotate", "annotate_again"):
            start = time.perf_counter()
            at.switch_page(f"views/{name.removesuffix('_again')}.py")
            at.run()
            renders[f"{name}_render_s"] = round(time.perf_counter() - start, 3)
            assert not at.exception, at.exception
        # The Data page: its first render (counts and the first page of the table), then a
        # full-text search (FTS5) over every text, as a user types a word and presses Enter.
        start = time.perf_counter()
        at.switch_page("views/data.py")
        at.run()
        renders["data_render_s"] = round(time.perf_counter() - start, 3)
        assert not at.exception, at.exception
        search = next(t for t in at.text_input if t.label == "Search the texts")
        start = time.perf_counter()
        search.set_value("capital").run()
        renders["data_search_s"] = round(time.perf_counter() - start, 3)
        assert not at.exception, at.exception
        renders["data_search_caption"] = next(c.value for c in at.caption
                                              if "texts match" in c.value)
        with Store(db) as store:
            saved = len(store.current_decisions(store.get_project("big").id))
    print(json.dumps({"samples": args.samples, "build_s": round(build_s, 1),
                      "review_first_render_s": round(first_render, 3),
                      "decision_median_s": round(statistics.median(decisions), 3),
                      "decision_max_s": round(max(decisions), 3),
                      **renders, "decisions_saved": saved}))


if __name__ == "__main__":
    main()
