"""Does the audit tell the truth? Simulated audits (gold labels) on the shared datasets.

    .venv/bin/python bench/audit_quality.py                          # teacher + conformal
    .venv/bin/python bench/audit_quality.py --students               # + student figures
    .venv/bin/python bench/audit_quality.py --datasets trec --seeds 20 --audit 100

Pools as in distill_quality.py (its helpers, same seeded samples). The offline teacher
annotates each pool with CA_all. Then, for each of ``--seeds`` seeds, a fresh audit of
``--audit`` texts is drawn through the store and labeled with the gold labels, and
``audit.quality_report`` gives its Wilson 95 % intervals; the bench checks whether each
interval holds the gold-measured pool value. The same audits calibrate conformal sets at
``--target`` (pure functions over the teacher's probabilities, computed once), and the
pool coverage of those sets is measured against gold.

``--students`` adds, per dataset: one CanDist student on CA_all with no audit, then the
same ``--seeds`` audits drawn AFTER it (so it never trained on them) for the student and
export intervals; and, with one audit drawn BEFORE distilling (seed 0), CanDist on CA_all
and CanDist on the conformal sets, both selecting their epoch on the held-out half of the
audit (``audit.with_audit_selection``). Prints one JSON line per result.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from distill_quality import SIZES, annotate, emit, make_pool  # noqa: E402

from candist_core.audit import quality_report, with_audit_selection  # noqa: E402
from candist_core.conformal import (calibrate, conformal_annotate, prediction_sets,  # noqa: E402
                                    run_scores)
from candist_core.distill import distill_project  # noqa: E402
from candist_core.store import Store  # noqa: E402
from candist_core.student import StudentConfig  # noqa: E402

CHECKED = ("teacher_accuracy", "coverage", "export_accuracy")


def reset_audit(store, project_id: int) -> None:
    """Forget every decision and the audit sample (bench maintenance, not app code)."""
    store.db.execute("DELETE FROM decisions WHERE project_id = ?", [project_id])
    store.db.execute("DELETE FROM audit_samples WHERE project_id = ?", [project_id])


def simulated_audit(store, project_id: int, n: int, seed: int) -> list[int]:
    gold = store.gold_labels(project_id)
    ids = store.draw_audit(project_id, n, seed=seed)
    store.record_decisions(project_id, {sid: gold[sid] for sid in ids}, audit=True,
                           who="simulated")
    return ids


def gold_values(store, project_id: int) -> dict[str, float]:
    """The pool values the intervals should hold, measured with every gold label."""
    run = store.latest_teacher_run(project_id)
    n, right, covered = store.gold_agreement(run.id)
    rows = list(store.export_rows(project_id))
    final = [r.human_label if r.human_action == "label"
             else r.student_label or r.teacher_label for r in rows]
    out = {"teacher_accuracy": right / n, "coverage": covered / n,
           "export_accuracy": sum(f == r.gold for f, r in zip(final, rows)) / len(rows)}
    student = [r for r in rows if r.student_label is not None]
    if student:
        out["student_accuracy"] = sum(r.student_label == r.gold for r in student) / len(student)
    return out


def interval_check(store, project, name: str, *, seeds: int, n: int, keys) -> dict:
    """Draw ``seeds`` audits of ``n``; how often each interval holds the gold value."""
    hits = {k: 0 for k in keys}
    widths = {k: [] for k in keys}
    values = {}
    for seed in range(seeds):
        reset_audit(store, project.id)
        simulated_audit(store, project.id, n, seed)
        report = quality_report(store, project.id)
        truth = gold_values(store, project.id)
        values = truth
        for k in keys:
            e = report.estimates[k]
            hits[k] += e.contains(truth[k])
            widths[k].append(e.high - e.low)
    reset_audit(store, project.id)
    return {"dataset": name, "audit": n, "seeds": seeds,
            **{f"{k}_held": f"{hits[k]}/{seeds}" for k in keys},
            **{f"{k}_mean_width": round(float(np.mean(widths[k])), 4) for k in keys},
            "gold": {k: round(v, 4) for k, v in values.items() if k in keys}}


def conformal_check(store, project, name: str, *, seeds: int, n: int, target: float,
                    ca: dict[str, dict]) -> dict:
    """Pool coverage and mean size of conformal sets calibrated on ``seeds`` audits."""
    names = store.label_schema(project.id).names
    index = {x: i for i, x in enumerate(names)}
    run = store.latest_teacher_run(project.id)
    ids, scores, _ = run_scores(store, run, names)
    gold = store.gold_labels(project.id)
    truth = np.array([index[gold[s]] for s in ids])
    coverage, size = [], []
    for seed in range(seeds):
        reset_audit(store, project.id)
        audit = simulated_audit(store, project.id, n, seed)
        row = {s: i for i, s in enumerate(ids)}
        t = calibrate(np.array([scores[row[s], truth[row[s]]] for s in audit]),
                      coverage=target)
        sets = prediction_sets(scores, t)
        coverage.append(float(np.mean([truth[i] in s for i, s in enumerate(sets)])))
        size.append(float(np.mean([len(s) for s in sets])))
    reset_audit(store, project.id)
    return {"dataset": name, "conformal_target": target, "audit": n, "seeds": seeds,
            "pool_coverage_mean": round(float(np.mean(coverage)), 4),
            "pool_coverage_min": round(min(coverage), 4),
            "pool_coverage_max": round(max(coverage), 4),
            "mean_labels": round(float(np.mean(size)), 3),
            "ca_add": ca["ca_add"], "ca_all": ca["ca_all"]}


def distill(store, project, config: StudentConfig) -> dict:
    start = time.perf_counter()
    config = with_audit_selection(store, project.id, config)
    run = store.student_run(distill_project(store, project.id, config,
                                            save_checkpoint=False))
    return {"validation": run.epochs[-1]["validation"], "best_epoch": run.best_epoch,
            "held_out": len(config.validation_ids),
            "seconds": round(time.perf_counter() - start, 1)}


def students(store, project, name: str, *, seeds: int, n: int, target: float) -> None:
    base = StudentConfig()
    # 1. no audit while training; audits drawn afterwards judge the student and the export.
    emit({"dataset": name, "student": "candist on ca_all, no audit",
          **distill(store, project, base)})
    emit({**interval_check(store, project, name, seeds=seeds, n=n,
                           keys=("student_accuracy", "export_accuracy")),
          "note": "audits drawn after the student run"})
    # 2. one audit before distilling; epoch selection on its held-out half.
    simulated_audit(store, project.id, n, 0)
    for label, strategy in (("candist on ca_all", "ca_all"),
                            (f"candist on conformal {target:.0%}", "conformal")):
        if strategy == "conformal":
            result = conformal_annotate(store, project.id, coverage=target)
            sets = {"threshold": round(result.threshold.score, 4),
                    "mean_labels": round(result.mean_labels, 3)}
        else:
            sets = {}
        info = distill(store, project, base)
        report = quality_report(store, project.id)
        truth = gold_values(store, project.id)
        e = report.estimates["student_accuracy"]
        emit({"dataset": name, "student": label, **sets, **info, "audit": n,
              "pool_accuracy": round(truth["student_accuracy"], 4),
              "export_accuracy_gold": round(truth["export_accuracy"], 4),
              "student_estimate": e.to_dict() if e else None,
              "student_estimate_n": e.n if e else 0,
              "student_interval_holds": bool(e and e.contains(truth["student_accuracy"])),
              "teacher_coverage_gold": round(truth["coverage"], 4)})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="trec,banking77,medical_abstracts")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--audit", type=int, default=100)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--students", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            with Store(Path(tmp) / f"{name}.db") as store:
                project = make_pool(store, name, SIZES.get(name, 1500), Path(tmp))
                ca = {}
                for strategy in ("ca_add", "ca_all"):
                    t = annotate(store, project, strategy)
                    ca[strategy] = {"coverage": round(t["coverage"], 4),
                                    "mean_labels": round(t["mean_labels"], 3)}
                emit(interval_check(store, project, name, seeds=args.seeds, n=args.audit,
                                    keys=CHECKED))
                emit(conformal_check(store, project, name, seeds=args.seeds, n=args.audit,
                                     target=args.target, ca=ca))
                if args.students:
                    students(store, project, name, seeds=args.seeds, n=args.audit,
                             target=args.target)


if __name__ == "__main__":
    main()
