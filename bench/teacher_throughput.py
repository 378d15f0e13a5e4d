"""LLM teacher throughput against the local llama.cpp server (SmolLM2-135M-Instruct).

    .venv/bin/python bench/teacher_throughput.py [--samples 200] [--concurrency 1,4,8]

For each concurrency: samples/s, mean request latency and the most requests in flight (both
measured by event hooks on the teacher's HTTP client, given through its client factory),
and our own overhead per sample: the CPU time this process spends per sample (prompt, cache
lookup, the client's request and parsing work, the SQLite write; the server is another
process), as a share of the request latency (goal < 2%). Every level uses a fresh
database, so nothing comes from the cache. Prints one JSON line per level.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import openai

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


class RequestClock:
    """Event hooks for an HTTP client: the time from sending each request to its reply's
    headers, and the most requests in flight at once."""

    def __init__(self):
        self.sent: dict[int, float] = {}
        self.wait_s = 0.0
        self.replies = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def on_request(self, request) -> None:
        self.sent[id(request)] = time.perf_counter()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    async def on_response(self, response) -> None:
        self.wait_s += time.perf_counter() - self.sent.pop(id(response.request))
        self.replies += 1
        self.in_flight -= 1

    def client_factory(self, base_url: str):
        """An LLMTeacher client factory whose HTTP client also reports to this clock."""
        def build(http_client: openai.DefaultAsyncHttpxClient) -> openai.AsyncOpenAI:
            hooks = http_client.event_hooks
            http_client.event_hooks = {"request": [*hooks["request"], self.on_request],
                                       "response": [*hooks["response"], self.on_response]}
            return openai.AsyncOpenAI(base_url=base_url, api_key="not-needed",
                                      http_client=http_client)
        return build


def measure(url: str, db: Path, *, concurrency: int, samples: int) -> dict:
    with Store(db) as store:
        project = store.create_project("trec", load_schema(TREC / "labels.json"))
        import_csv(store, project.id, TREC / "train.csv", options=ImportOptions(gold_col="label"))
        clock = RequestClock()
        teacher = LLMTeacher(clock.client_factory(url), model="smollm2")
        config = TeacherConfig(strategy="ca_add", shots=0, concurrency=concurrency,
                               max_tokens=60, timeout=120)
        start, cpu = time.perf_counter(), time.process_time()
        summary = annotate_project(store, project.id, teacher, config, limit=samples)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    latency = clock.wait_s / max(1, clock.replies)
    overhead = cpu / max(1, summary.annotated + summary.failed)
    return {"concurrency": concurrency, "samples": summary.total,
            "annotated": summary.annotated, "failed": summary.failed,
            "samples_per_s": round(summary.total / wall, 2),
            "mean_request_latency_s": round(latency, 3),
            "max_requests_in_flight": clock.max_in_flight,
            "overhead_ms_per_sample": round(overhead * 1000, 2),
            "overhead_share_of_latency": round(overhead / latency, 4) if latency else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--concurrency", default="1,4,8")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, llama_server(log_dir=Path(tmp)) as (url, _):
        for level in [int(c) for c in args.concurrency.split(",")]:
            print(json.dumps(measure(url, Path(tmp) / f"c{level}.db", concurrency=level,
                                     samples=args.samples)), flush=True)


if __name__ == "__main__":
    main()
