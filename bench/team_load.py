"""A team labeling session under load: N reviewers at once on a 100,000-text project.

    .venv/bin/python bench/team_load.py [--reviewers 10] [--seconds 120] [--samples 100000]
    .venv/bin/python bench/team_load.py --reviewers 3 --seconds 20 --samples 5000   # smoke
    .venv/bin/python bench/team_load.py --think 3     # people who read for ~3 s a text
    .venv/bin/python bench/team_load.py --st-option runner.postScriptGC=false   # a setting

Each reviewer is a real Streamlit session over the websocket (``tests/st_session.py``: the
messages a browser tab sends and receives, with no browser), against a real
``streamlit run app.py`` started for the run (no sign-in: each reviewer types its own name
in the sidebar's Reviewer box). The project is built by ``bench/app_latency.py``'s
``build`` (TREC questions repeated, synthetic candidate sets and student predictions
stored through the real store), from a copy of TREC's train split whose texts end in
`` [r<i>]``, so every text on the page names its sample (the repeated questions are
otherwise identical).

Each reviewer opens Review, names itself, then loops for ``--seconds``: reads the text on
screen (the first ``st.text``), waits ``--think`` seconds (0 by default: a stress test,
every reviewer clicking as fast as the server answers), clicks a random label button, and
waits for the rerun to finish (``script_finished``); the click-to-finished time is the decision's latency, and
the toast "Saved: <label>." is the page confirming it. The clock starts when every
reviewer has its first text. Every second, a separate connection reads the ``leases``
table. At the end SQLite is read back and one JSON line is printed:

* ``decisions``: decisions the pages confirmed; ``decisions_per_second`` over the window;
  ``decision_ms``: p50 / p95 / max latency (goal: p95 < 300 ms on 2 cores);
* ``lost``: confirmed decisions not in SQLite (must be 0);
* ``doubled``: samples outside the overlap with current labels from two reviewers, plus
  (sample, reviewer) pairs decided twice (must be 0);
* ``double_leases``: samples seen leased to two reviewers at once outside the overlap, or
  to three inside it, in the once-a-second samples of the leases table (must be 0);
* ``overlap_items_decided`` / ``overlap_items_by_two``: overlap texts decided by one or
  more / by two reviewers;
* ``server_cpu``: CPU seconds of the Streamlit process over the window and the mean cores
  it used; ``client_cpu_s`` the same for this process (the reviewers share the machine);
  ``load_avg``: the machine's 1-minute load at the end (a busy machine slows everything).

Results do not go into RESULTS.md from a shared, busy machine: measure on a quiet one.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import app_latency  # noqa: E402
from apprunner import start_streamlit, stop  # noqa: E402
from candist_core.store import Store  # noqa: E402
from st_session import StreamlitSession  # noqa: E402

PROJECT = "big"      # app_latency.build's project name


def build_project(tmp: Path, n: int) -> Path:
    """``app_latency.build`` on TREC train with a unique suffix per text."""
    source = app_latency.TREC
    folder = tmp / "trec"
    folder.mkdir()
    shutil.copy(source / "labels.json", folder / "labels.json")
    frame = pd.read_csv(source / "train.csv", dtype=str, keep_default_na=False)
    frame = pd.concat([frame] * (-(-n // len(frame))), ignore_index=True).iloc[:n].copy()
    frame["text"] = [f"{t} [r{i}]" for i, t in enumerate(frame["text"])]
    frame.to_csv(folder / "train.csv", index=False)
    db = tmp / "team.db"
    app_latency.TREC = folder
    try:
        app_latency.build(db, n)
    finally:
        app_latency.TREC = source
    return db


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Reviewer(threading.Thread):
    """One browser tab's worth of reviewing, over the websocket."""

    def __init__(self, name: str, url: str, by_text: dict[str, int], ready: threading.Barrier,
                 window: dict, seed: int, think: float = 0.0):
        super().__init__(name=name, daemon=True)
        self.who, self.url, self.by_text = name, url, by_text
        self.ready, self.window = ready, window
        self.rng = random.Random(seed)
        self.think = think
        self.latencies: list[float] = []
        self.confirmed: list[tuple[str, int, str]] = []   # (who, sample id, label)
        self.open_s = None
        self.error: str | None = None
        self.exhausted = False

    def run(self) -> None:
        page = StreamlitSession(self.url, timeout=300)
        try:
            start = time.perf_counter()
            page.open("review")
            page.set_text("Reviewer", self.who)
            self.open_s = time.perf_counter() - start
        except Exception as exc:            # noqa: BLE001 - reported in the JSON line
            self.error = f"open: {type(exc).__name__}: {exc}"
        try:
            self.ready.wait()
        except threading.BrokenBarrierError:
            pass
        try:
            while self.error is None and time.monotonic() < self.window["end"]:
                buttons = [w for w in page.buttons() if (w.key or "").startswith("label-")]
                texts = page.texts()
                if not buttons or not texts:
                    self.exhausted = True
                    break
                sample_id = self.by_text[texts[0]]
                if self.think:                  # a person reads the text first
                    time.sleep(self.rng.uniform(0.5, 1.5) * self.think)
                button = self.rng.choice(buttons)
                took = page.click(button.key)
                saved = [t for t in page.toasts() if t.startswith("Saved: ")]
                if saved:
                    label = saved[0][len("Saved: "):-1]
                    self.confirmed.append((self.who, sample_id, label))
                    self.latencies.append(took)
        except Exception as exc:            # noqa: BLE001
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            page.close()


class LeaseWatch(threading.Thread):
    """Reads the leases table once a second on its own connection."""

    def __init__(self, db: Path, project_id: int, overlap: set[int], stop_at: threading.Event):
        super().__init__(daemon=True)
        self.db, self.project_id, self.overlap, self.stop_at = db, project_id, overlap, stop_at
        self.samples = 0
        self.max_leases = 0
        self.double: set[int] = set()

    def run(self) -> None:
        with Store(self.db) as store:
            while not self.stop_at.wait(1.0):
                holders: dict[int, set[str]] = defaultdict(set)
                for lease in store.active_leases(self.project_id):
                    holders[lease.sample_id].add(lease.who)
                self.samples += 1
                self.max_leases = max(self.max_leases, sum(map(len, holders.values())))
                for sid, who in holders.items():
                    if len(who) > (2 if sid in self.overlap else 1):
                        self.double.add(sid)


def audit(db: Path, reviewers: list[Reviewer], names: set[str]) -> dict:
    """What SQLite holds, against what the pages confirmed."""
    with Store(db) as store:
        project = store.get_project(PROJECT)
        overlap = store.overlap_ids(project.id)
        log = [d for d in store.decision_log(project.id, limit=10 ** 9) if d.who in names]
        raters = [r for r in store.rater_labels(project.id) if r[1] in names]
    rows = {(d.who, d.sample_id, d.label) for d in log if d.action == "label"}
    confirmed = [c for r in reviewers for c in r.confirmed]
    lost = sum(1 for c in confirmed if c not in rows)
    per_pair: dict[tuple[int, str], int] = defaultdict(int)
    for d in log:
        if d.action != "undo":
            per_pair[(d.sample_id, d.who)] += 1
    twice = sum(1 for n in per_pair.values() if n > 1)
    by_sample: dict[int, set[str]] = defaultdict(set)
    for sid, who, _ in raters:
        by_sample[sid].add(who)
    two_outside = sum(1 for sid, who in by_sample.items()
                      if len(who) > 1 and sid not in overlap)
    return {"decisions_in_sqlite": sum(1 for d in log if d.action == "label"),
            "lost": lost, "doubled": two_outside + twice,
            "overlap_items_decided": sum(1 for sid in by_sample if sid in overlap),
            "overlap_items_by_two": sum(1 for sid, who in by_sample.items()
                                        if sid in overlap and len(who) >= 2),
            "overlap": overlap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviewers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean seconds a reviewer reads a text before clicking "
                             "(uniform 0.5x-1.5x); 0, the default: click at once")
    parser.add_argument("--st-option", action="append", default=[], metavar="NAME=VALUE",
                        help="a Streamlit option for the server, e.g. "
                             "runner.postScriptGC=false (repeatable)")
    args = parser.parse_args()
    options = [part for opt in args.st_option
               for part in (f"--{opt.split('=', 1)[0]}", opt.split("=", 1)[1])]
    print(f"team_load: {args.reviewers} reviewers as real Streamlit sessions over the "
          f"websocket (tests/st_session.py, no browser), {args.samples} texts, "
          f"{args.seconds:g} s", file=sys.stderr, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="team-load-"))
    proc = None
    try:
        start = time.perf_counter()
        db = build_project(tmp, args.samples)
        build_s = time.perf_counter() - start
        with Store(db) as store:
            project = store.get_project(PROJECT)
            by_text = {s.text: s.id for s in store.samples(project.id)}
            overlap_start = store.overlap_ids(project.id)
        proc, url = start_streamlit(db, timeout=180, extra_args=options)
        names = [f"reviewer-{i:02d}" for i in range(args.reviewers)]
        window = {"end": float("inf")}
        ready = threading.Barrier(args.reviewers + 1)
        reviewers = [Reviewer(n, url, by_text, ready, window, seed=i, think=args.think)
                     for i, n in enumerate(names)]
        for r in reviewers:
            r.start()
        ready.wait(timeout=900)
        stop_watch = threading.Event()
        watch = LeaseWatch(db, project.id, overlap_start, stop_watch)
        server_cpu0, client_cpu0 = cpu_seconds(proc.pid), time.process_time()
        t0 = time.monotonic()
        window["end"] = t0 + args.seconds
        watch.start()
        for r in reviewers:
            r.join(args.seconds + 400)
        elapsed = time.monotonic() - t0
        server_cpu = cpu_seconds(proc.pid) - server_cpu0
        client_cpu = time.process_time() - client_cpu0
        stop_watch.set()
        watch.join(30)
        stop(proc)
        proc = None
        found = audit(db, reviewers, set(names))
        latencies = [t * 1000 for r in reviewers for t in r.latencies]
        confirmed = sum(len(r.confirmed) for r in reviewers)
        result = {
            "clients": "real Streamlit sessions over the websocket (tests/st_session.py), "
                       "no browser",
            "reviewers": args.reviewers, "seconds": args.seconds, "samples": args.samples,
            "think_s": args.think, "st_options": args.st_option,
            "build_s": round(build_s, 1),
            "open_s": {"p50": round(statistics.median([r.open_s for r in reviewers
                                                       if r.open_s]), 2)
                       if any(r.open_s for r in reviewers) else None,
                       "max": round(max([r.open_s or 0 for r in reviewers]), 2)},
            "decisions": confirmed,
            "decisions_per_second": round(confirmed / elapsed, 2),
            "decision_ms": {"p50": round(percentile(latencies, 0.5), 1),
                            "p95": round(percentile(latencies, 0.95), 1),
                            "max": round(max(latencies), 1) if latencies else None},
            "decisions_in_sqlite": found["decisions_in_sqlite"],
            "lost": found["lost"], "doubled": found["doubled"],
            "double_leases": len(watch.double), "lease_samples": watch.samples,
            "max_leases_at_once": watch.max_leases,
            "overlap_items_decided": found["overlap_items_decided"],
            "overlap_items_by_two": found["overlap_items_by_two"],
            "server_cpu": {"cpu_s": round(server_cpu, 1),
                           "cores": round(server_cpu / elapsed, 2)},
            "client_cpu_s": round(client_cpu, 1),
            "cpu_count": os.cpu_count(), "load_avg": round(os.getloadavg()[0], 2),
            "exhausted": sum(r.exhausted for r in reviewers),
            "errors": [f"{r.who}: {r.error}" for r in reviewers if r.error],
        }
        print(json.dumps(result), flush=True)
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
