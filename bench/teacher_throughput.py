"""LLM teacher throughput against the local llama.cpp server (SmolLM2-135M-Instruct).

    .venv/bin/python bench/teacher_throughput.py [--samples 200] [--concurrency 1,4,8]

For each concurrency: samples/s, mean request latency, and our own overhead per sample
(time spent in our code - prompt, cache lookup, parsing, the SQLite write - rather than
waiting on the server), as a share of the request latency (goal < 2%). Every level uses a
fresh database, so nothing comes from the cache. Prints one JSON line per level.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from candist_core.importing import ImportOptions, import_csv  # noqa: E402
from candist_core.llm_teacher import LLMTeacher  # noqa: E402
from candist_core.schema import load_schema  # noqa: E402
from candist_core.store import Store  # noqa: E402
from candist_core.teacher import TeacherConfig, annotate_project  # noqa: E402
from llama_server import llama_server  # noqa: E402

TREC = ROOT.parent / "shared" / "datasets" / "trec"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--concurrency", default="1,4,8")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, llama_server(log_dir=Path(tmp)) as (url, _):
        for level in [int(c) for c in args.concurrency.split(",")]:
            with Store(Path(tmp) / f"c{level}.db") as store:
                project = store.create_project("trec", load_schema(TREC / "labels.json"))
                import_csv(store, project.id, TREC / "train.csv",
                           options=ImportOptions(gold_col="label"))
                teacher = LLMTeacher.connect(base_url=url, model="smollm2", timeout=120)
                config = TeacherConfig(strategy="ca_add", shots=0, concurrency=level,
                                       max_tokens=60)
                start = time.perf_counter()
                summary = annotate_project(store, project.id, teacher, config,
                                           limit=args.samples)
                wall = time.perf_counter() - start
                t = teacher.timing
                latency = t["wait_s"] / max(1, summary.requests)
                overhead = (t["busy_s"] - t["wait_s"]) / max(1, t["jobs"])
                print(json.dumps({
                    "concurrency": level, "samples": summary.total,
                    "annotated": summary.annotated, "failed": summary.failed,
                    "samples_per_s": round(summary.total / wall, 2),
                    "mean_request_latency_s": round(latency, 3),
                    "max_requests_in_flight": teacher.max_in_flight,
                    "overhead_ms_per_sample": round(overhead * 1000, 2),
                    "overhead_share_of_latency": round(overhead / latency, 4)
                    if latency else None}), flush=True)


if __name__ == "__main__":
    main()
