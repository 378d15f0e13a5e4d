"""The learning loop, measured: a simulated reviewer who answers with the gold label works
through the review queue in rounds, and the continuous student updates after each round.

    .venv/bin/python bench/learning_curve.py            # the three shared datasets
    .venv/bin/python bench/learning_curve.py --quick    # one small slice (the test suite)

For each dataset a seeded sample of the training split is the pool (bench/distill_quality's
pools). The offline teacher annotates it with CA_all and one full default distillation
(the app's settings) is trained; then, for each review order, from that same start (a copy
of the database), rounds of ``--round`` decisions: the next texts of the order get their
gold label as a human decision, then ``update_student`` (the app's continuous update: the
offline teacher re-taught with the human labels, then the head; ``--compare-teach`` adds
the default order without the re-teaching).
Recorded after every round, one JSON line each: export accuracy on the pool (a human label
where there is one, else the student's), the student's accuracy on the pool and on the
dataset's test split (texts it never saw: the full run's encoder embeds them once, each
updated head scores them), and the update's wall time. ``--full-at K`` also re-distills
from scratch with the first K decisions of the default order: the update vs a full run.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from distill_quality import SIZES, read_split  # noqa: E402

from candist_core.distill import checkpoint_dir, distill_project, update_student  # noqa: E402
from candist_core.encoder import shared_encoder  # noqa: E402
from candist_core.human_teacher import teach_for_update  # noqa: E402
from candist_core.importing import ImportOptions, import_csv  # noqa: E402
from candist_core.learning import UpdateConfig  # noqa: E402
from candist_core.metrics import calibration_error, project_metrics  # noqa: E402
from candist_core.predicting import Predictor  # noqa: E402
from candist_core.review import DEFAULT_SIGNAL  # noqa: E402
from candist_core.review_queue import review_queue  # noqa: E402
from candist_core.schema import label_texts, load_schema  # noqa: E402
from candist_core.store import Store  # noqa: E402
from candist_core.student import StudentConfig  # noqa: E402
from candist_core.student_state import load_head, state_path  # noqa: E402
from candist_core.teacher import (OfflineTeacher, TeacherConfig, annotate_project,  # noqa: E402
                                  with_embedding_cache)

DATASETS = ROOT.parent / "shared" / "datasets"
ORDERS = ("set_size", "entropy", "low_confidence", "label_issue", "likely_wrong", "random")


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def export_accuracy(store: Store, project_id: int) -> float:
    rows = list(store.export_rows(project_id, texts=False))
    final = [r.human_label if r.human_action == "label" else r.student_label for r in rows]
    return sum(f == r.gold for f, r in zip(final, rows)) / len(rows)


def student_accuracy(store: Store, project_id: int) -> float:
    return project_metrics(store, project_id)["student"]["accuracy"]


def confidence_record(store: Store, project_id: int, run_id: int) -> dict:
    """How far the student's shown confidence is from its accuracy on the texts nobody
    labelled: the calibration error and mean confidence as shown (with the update's
    temperature) and before the temperature (``raw``)."""
    labels = store.label_schema(project_id).names
    gold = {s.id: labels.index(s.gold) for s in store.samples(project_id) if s.gold in labels}
    decided = set(store.current_decisions(project_id))
    rows = [p for p in store.predictions(run_id) if p.sample_id in gold
            and p.sample_id not in decided]
    probs = np.stack([p.probs for p in rows]).astype(np.float64)
    truth = np.array([gold[p.sample_id] for p in rows])
    temperature = ((store.student_run(run_id).epochs or [{}])[0].get("calibration")
                   or {}).get("temperature", 1.0)
    raw = np.exp(temperature * np.log(np.clip(probs, 1e-30, 1)))
    raw /= raw.sum(1, keepdims=True)
    return {"temperature": temperature,
            "ece": round(calibration_error(probs, truth), 4),
            "mean_confidence": round(float(probs.max(1).mean()), 4),
            "raw_ece": round(calibration_error(raw, truth), 4),
            "raw_mean_confidence": round(float(raw.max(1).mean()), 4)}


class TestSplit:
    """The dataset's test split embedded once by the full run's encoder: every updated
    head scores it without running the encoder again."""

    def __init__(self, name: str, model_dir: Path, labels: list[str], limit: int | None):
        frame = read_split(name, "test")
        if limit is not None and len(frame) > limit:
            frame = frame.sample(n=limit, random_state=0)
        index = {n: i for i, n in enumerate(labels)}
        self.gold = np.array([index.get(g, -1) for g in frame["label"]])
        self.pooled = torch.from_numpy(Predictor.from_dir(model_dir).embeddings(
            frame["text"].tolist(), batch_size=128))

    def accuracy(self, state: Path) -> float:
        head, _ = load_head(state)
        pred = head.probs(self.pooled).argmax(1).numpy()
        return float((pred == self.gold).mean())


def build(tmp: Path, name: str, size: int, config: StudentConfig) -> dict:
    """The shared start: pool, CA_all teacher run, one full distillation (kept, with its
    model folder for the test split). A start already built in ``tmp`` (``--start-dir``,
    same dataset, size and settings) is reused."""
    db = tmp / "start" / "bench.db"
    saved = tmp / "start" / "start.json"
    key = {"dataset": name, "n": size, "config": repr(config)}
    if saved.is_file():
        start = json.loads(saved.read_text())
        if start.get("key") == key:
            return {**start, "db": db, "model_dir": Path(start["model_dir"])}
        shutil.rmtree(tmp / "start")
    frame = read_split(name, "train", size)
    csv = tmp / f"{name}.csv"
    frame.to_csv(csv, index=False)
    db.parent.mkdir(parents=True)
    with Store(db) as store:
        project = store.create_project(name, load_schema(DATASETS / name / "labels.json"))
        import_csv(store, project.id, csv, options=ImportOptions(gold_col="label"))
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all"))
        teacher = project_metrics(store, project.id)["teacher"]
        started = time.perf_counter()
        run_id = distill_project(store, project.id, config)
        seconds = time.perf_counter() - started
        run = store.student_run(run_id)
        start = {"db": db, "project": project.id, "run": run_id,
                 "model_dir": Path(run.checkpoint),
                 "labels": store.label_schema(project.id).names,
                 "record": {"dataset": name, "n": size,
                            "teacher_sa_accuracy": round(teacher["sa_accuracy"], 4),
                            "teacher_coverage": round(teacher["coverage"], 4),
                            "teacher_mean_labels": round(teacher["mean_labels"], 3),
                            "student_accuracy": round(student_accuracy(store, project.id), 4),
                            "export_accuracy": round(export_accuracy(store, project.id), 4),
                            "distill_seconds": round(seconds, 1)}}
    saved.write_text(json.dumps({**start, "db": str(db), "model_dir": str(start["model_dir"]),
                                 "key": key}))
    return start


def copy_start(start: dict, dest: Path) -> Path:
    """A copy of the start's database and student states (not the 90 MB model folder)."""
    dest.mkdir(parents=True)
    src = start["db"].parent
    shutil.copyfile(start["db"], dest / start["db"].name)
    for state in (src / "models").glob("*/*.state"):
        shutil.copytree(state, dest / state.relative_to(src))
    for cache in (src / "models").glob("*/embeddings-*.npz"):
        shutil.copyfile(cache, dest / cache.relative_to(src))
    return dest / start["db"].name


def warm_cache(start: dict) -> None:
    """The offline teacher's embedding cache for a start built before the app kept one
    (a new start's annotation writes it), so that no round pays the encoder pass."""
    with Store(start["db"]) as store:
        pid = start["project"]
        encoder = with_embedding_cache(store, pid, OfflineTeacher(shared_encoder())).encoder
        schema = store.label_schema(pid)
        encoder.encode([s.text for s in store.samples(pid)] + label_texts(schema))
        encoder.save()


def next_texts(store: Store, pid: int, order: str, n: int) -> list[dict]:
    """The next ``n`` texts of ``order``: the app's review queue, or for ``random@S`` a
    uniformly random order of the undecided texts with seed S (random order is a
    distribution: ``--random-seeds`` draws more than the app's one shuffle)."""
    if not order.startswith("random@"):
        return review_queue(store, pid, n=n, signal=order)
    decided = set(store.current_decisions(pid))
    ids = np.random.default_rng(int(order.split("@")[1])).permutation(
        sorted(s.id for s in store.samples(pid)))
    return [{"sample_id": int(i)} for i in ids if int(i) not in decided][:n]


def run_order(start: dict, order: str, dest: Path, *, rounds: int, size: int,
              test: TestSplit | None, name: str,
              update: UpdateConfig = UpdateConfig(), teach: bool = True) -> Path:
    """Rounds of ``size`` gold decisions in ``order``, an update after each (the app's:
    the human-taught offline teacher first unless ``teach`` is False); the copy's database
    path (for --full-at)."""
    db = copy_start(start, dest)
    with Store(db) as store:
        pid = start["project"]
        gold = {s.id: s.gold for s in store.samples(pid)}
        project = store.project_by_id(pid)
        for r in range(1, rounds + 1):
            rows = next_texts(store, pid, order, size)
            for row in rows:
                store.record_decision(pid, row["sample_id"], action="label",
                                      label=gold[row["sample_id"]], who="simulated")
            started = time.perf_counter()
            run_id = update_student(store, pid, update, trigger="bench", teach=teach)
            seconds = time.perf_counter() - started
            record = {"dataset": name, "order": order, "decisions": r * size,
                      **({} if update.balance_humans else {"balance_humans": False}),
                      **({} if teach else {"teach": False}),
                      "served": len(rows),
                      "export_accuracy": round(export_accuracy(store, pid), 4),
                      "student_accuracy": round(student_accuracy(store, pid), 4),
                      "update_seconds": round(seconds, 2),
                      **confidence_record(store, pid, run_id)}
            if test is not None:
                record["test_accuracy"] = round(test.accuracy(
                    state_path(checkpoint_dir(store, project.name, run_id))), 4)
            emit(record)
    return db


def full_redistill(db: Path, start: dict, config: StudentConfig, *, decisions: int,
                   name: str, test_texts: pd.DataFrame | None) -> None:
    """A full distillation from scratch with the decisions already in ``db`` (compared
    with the update that used the same decisions), on the same re-taught teacher."""
    with Store(db) as store:
        pid = start["project"]
        started = time.perf_counter()
        teach_for_update(store, pid)
        run_id = distill_project(store, pid, config, save_checkpoint=test_texts is not None)
        record = {"dataset": name, "full_redistill_at": decisions,
                  "export_accuracy": round(export_accuracy(store, pid), 4),
                  "student_accuracy": round(student_accuracy(store, pid), 4),
                  "seconds": round(time.perf_counter() - started, 1)}
        run = store.student_run(run_id)
        if test_texts is not None and run.checkpoint:
            probs = Predictor.from_dir(run.checkpoint).probabilities(
                test_texts["text"].tolist(), batch_size=128)
            labels = store.label_schema(pid).names
            record["test_accuracy"] = round(float(np.mean(
                [labels[i] == g for i, g in zip(probs.argmax(1), test_texts["label"])])), 4)
        emit(record)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="trec,banking77,medical_abstracts")
    parser.add_argument("--sizes", default=",".join(f"{k}={v}" for k, v in SIZES.items()))
    parser.add_argument("--orders", default=",".join(ORDERS))
    parser.add_argument("--round", type=int, default=50, help="decisions per round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=None, help="the full run's epochs")
    parser.add_argument("--full-at", type=int, default=200,
                        help="re-distill from scratch with this many decisions of the "
                             "default order (0: skip)")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="score at most this many test texts (seeded sample)")
    parser.add_argument("--no-test", action="store_true", help="skip the test split")
    parser.add_argument("--start-dir", default=None, metavar="DIR",
                        help="keep each dataset's start (pool, teacher run, full student) "
                             "in DIR/<dataset>/ and reuse it in later runs")
    parser.add_argument("--random-seeds", type=int, default=1, metavar="K",
                        help="with the random order: K random orders in all (the app's "
                             "shuffle and K-1 seeded ones, named random@1...), for the "
                             "spread of random order")
    parser.add_argument("--compare-teach", action="store_true",
                        help="also run the default order without re-teaching the offline "
                             "teacher before each update (the update before session 9)")
    parser.add_argument("--compare-balance", action="store_true",
                        help="also run the default order with balance_humans=False (a human "
                             "row weighs as much as a teacher row)")
    parser.add_argument("--quick", action="store_true",
                        help="TREC, 300 texts, 1 epoch, 3 rounds of 20, 3 orders, 200 "
                             "test texts, no full re-distillation (about 2 minutes)")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.sizes = "trec", "trec=300"
        args.orders = f"{DEFAULT_SIGNAL},label_issue,random"
        args.round, args.rounds, args.epochs, args.full_at = 20, 3, 1, 0
        args.test_limit = 200
    sizes = {k: int(v) for k, v in (s.split("=") for s in args.sizes.split(","))}
    config = StudentConfig() if args.epochs is None else StudentConfig(epochs=args.epochs)
    if args.quick:
        config = replace(config, extra_epochs=0)       # its one epoch, settled or not
    orders = args.orders.split(",")
    if "random" in orders:
        orders += [f"random@{k}" for k in range(1, args.random_seeds)]
    emit({"bench": "learning_curve", "round": args.round, "rounds": args.rounds,
          "orders": orders, "default_order": DEFAULT_SIGNAL, "epochs": config.epochs,
          "torch_threads": torch.get_num_threads()})
    for name in args.datasets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            started = time.perf_counter()
            home = Path(args.start_dir) / name if args.start_dir else tmp
            home.mkdir(parents=True, exist_ok=True)
            start = build(home, name, sizes[name], config)
            warm_cache(start)
            test = None if args.no_test else TestSplit(name, start["model_dir"],
                                                       start["labels"], args.test_limit)
            if test is not None:
                start["record"]["test_accuracy"] = round(test.accuracy(state_path(
                    start["model_dir"])), 4)
            emit({**start["record"], "decisions": 0})
            dbs = {order: run_order(start, order, tmp / order, rounds=args.rounds,
                                    size=args.round, test=test, name=name)
                   for order in orders}
            if args.compare_teach:
                run_order(start, DEFAULT_SIGNAL, tmp / "untaught", rounds=args.rounds,
                          size=args.round, test=test, name=name, teach=False)
            if args.compare_balance:
                run_order(start, DEFAULT_SIGNAL, tmp / "unbalanced", rounds=args.rounds,
                          size=args.round, test=test, name=name,
                          update=UpdateConfig(balance_humans=False))
            if args.full_at and DEFAULT_SIGNAL in dbs:
                again = tmp / "full"
                db = copy_start(start, again)
                _replay(dbs[DEFAULT_SIGNAL], db, start["project"], args.full_at)
                test_texts = None if args.no_test else read_split(name, "test")
                if test_texts is not None and args.test_limit and \
                        len(test_texts) > args.test_limit:
                    test_texts = test_texts.sample(n=args.test_limit, random_state=0)
                full_redistill(db, start, config, decisions=args.full_at, name=name,
                               test_texts=test_texts)
            emit({"dataset": name, "wall_seconds": round(time.perf_counter() - started, 1)})


def _replay(source: Path, dest: Path, project_id: int, k: int) -> None:
    """The first ``k`` decisions of ``source`` recorded again in ``dest``."""
    with Store(source) as src:
        decisions = sorted(src.current_decisions(project_id).values(), key=lambda d: d.id)[:k]
    with Store(dest) as store:
        for d in decisions:
            store.record_decision(project_id, d.sample_id, action=d.action, label=d.label,
                                  who=d.who)


if __name__ == "__main__":
    main()
