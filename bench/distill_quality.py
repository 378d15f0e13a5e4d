"""Student quality: offline teacher -> students sa / uniform / candist on the shared datasets.

    .venv/bin/python bench/distill_quality.py                      # the main table
    .venv/bin/python bench/distill_quality.py --human 100          # + 100 simulated reviews
    .venv/bin/python bench/distill_quality.py --ablation --datasets trec

For each dataset a seeded sample of the training split is the pool (sizes below, chosen so
the main table fits ~30 minutes on 2 CPU cores). The offline teacher annotates it with SA,
CA_add and CA_all; every student uses the default StudentConfig (same epochs, same
label-free model selection); pool accuracy is measured against the gold labels, which
nothing in training or selection sees. Each student is then saved as its model folder and
scored on the dataset's test split with ``predict`` (texts it never saw; ``--no-test``
skips this). Prints one JSON line per result.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from candist_core.distill import distill_project  # noqa: E402
from candist_core.encoder import shared_encoder  # noqa: E402
from candist_core.importing import ImportOptions, import_csv  # noqa: E402
from candist_core.metrics import project_metrics  # noqa: E402
from candist_core.predicting import PredictOptions, predict_file  # noqa: E402
from candist_core.refinery import Components  # noqa: E402
from candist_core.review import rank_ambiguous  # noqa: E402
from candist_core.schema import load_schema  # noqa: E402
from candist_core.store import Store  # noqa: E402
from candist_core.student import StudentConfig  # noqa: E402
from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
SIZES = {"trec": 1500, "banking77": 1500, "medical_abstracts": 800}
ABLATION = [
    ("uniform CE", "uniform", Components(False, False, False, False, False), False),
    ("+ re-normalisation", "candist", Components(True, False, False, False, False), False),
    ("+ out-of-candidate filter", "candist", Components(True, True, False, False, False),
     False),
    ("+ sharpening", "candist", Components(True, True, True, False, False), False),
    ("+ class-wise selection", "candist", Components(True, True, True, True, False), False),
    ("+ high-confidence samples", "candist", Components(True, True, True, True, True), False),
    ("+ regularisers (full CanDist)", "candist", Components(), True),
]


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def read_split(name: str, split: str = "train", size: int | None = None) -> pd.DataFrame:
    """A seeded sample of a dataset split (the pool, with ``train``): every benchmark that
    compares with this one reads its pools here."""
    frame = pd.read_csv(DATASETS / name / f"{split}.csv", dtype=str, keep_default_na=False)
    return frame if size is None else frame.sample(n=min(size, len(frame)), random_state=0)


def make_pool(store: Store, name: str, size: int, tmp: Path):
    frame = read_split(name, "train", size)
    path = tmp / f"{name}.csv"
    frame.to_csv(path, index=False)
    project = store.create_project(name, load_schema(DATASETS / name / "labels.json"))
    import_csv(store, project.id, path, options=ImportOptions(gold_col="label"))
    return project


def annotate(store, project, strategy: str) -> dict:
    annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                     TeacherConfig(strategy=strategy))
    return project_metrics(store, project.id)["teacher"]


TEST_SPLIT = True   # main(): --no-test turns the test-split scores off


def train(store, project, config: StudentConfig) -> dict:
    start = time.perf_counter()
    run_id = distill_project(store, project.id, config, save_checkpoint=TEST_SPLIT)
    run = store.student_run(run_id)
    student = project_metrics(store, project.id)["student"]
    result = {"accuracy": round(student["accuracy"], 4), "best_epoch": run.best_epoch,
              "epochs": len(run.epochs), "seconds": round(time.perf_counter() - start, 1),
              "per_epoch_accuracy": [round(e["gold_accuracy"], 4) for e in run.epochs],
              # The label-free signals of every epoch, to compare selection rules with gold.
              "per_epoch_selection": [round(e["selection_score"], 4) for e in run.epochs],
              "per_epoch_set_mass": [round(e.get("selection_set_mass", float("nan")), 4)
                                     for e in run.epochs],
              "per_epoch_changed": [round(e.get("changed", float("nan")), 4)
                                    for e in run.epochs],
              "selection_n": run.epochs[-1].get("selection_n") if run.epochs else None}
    if run.checkpoint:
        result.update(test_split_score(project.name, Path(run.checkpoint)))
        shutil.rmtree(run.checkpoint)        # ~90 MB a student
    return result


def test_split_score(name: str, model_dir: Path) -> dict:
    """Accuracy of ``predict`` with the saved student on the dataset's test split."""
    test = DATASETS / name / "test.csv"
    out = model_dir.parent / f"{model_dir.name}-test.csv"
    summary = predict_file(model_dir, test, out, options=PredictOptions(batch_size=128))
    labelled = pd.read_csv(out, dtype=str, keep_default_na=False)
    accuracy = (labelled["label"] == labelled["input_label"]).mean()
    out.unlink()
    return {"test_accuracy": round(float(accuracy), 4), "test_n": summary.rows,
            "test_seconds": round(summary.seconds, 1)}


def main_table(store, project, name, base: StudentConfig, strategies, methods, human: int):
    teacher = annotate(store, project, "sa")
    emit({"dataset": name, "n": store.count_samples(project.id), "teacher_sa_accuracy":
          round(teacher["sa_accuracy"], 4)})
    if "sa" in methods:
        emit({"dataset": name, "strategy": "sa", "method": "sa",
              **train(store, project, replace(base, method="sa"))})
    for strategy in strategies:
        t = annotate(store, project, strategy)
        for method in [m for m in methods if m != "sa"]:
            emit({"dataset": name, "strategy": strategy, "method": method,
                  "teacher_coverage": round(t["coverage"], 4),
                  "teacher_mean_labels": round(t["mean_labels"], 3),
                  **train(store, project, replace(base, method=method))})
    if human:
        simulate_reviews(store, project, name, base, human)


def simulate_reviews(store, project, name, base, k: int) -> None:
    """Gold labels of the k most ambiguous samples (by the last student's entropy) stand in
    for a reviewer's decisions; then distill again."""
    before = project_metrics(store, project.id)["student"]["accuracy"]
    signals = store.review_signals(project.id)
    order = rank_ambiguous(signals, signal="entropy")[:k]
    samples = {s.id: s for s in store.samples(project.id)}
    for pos in order:
        sid = int(signals["sample_id"][pos])
        store.record_decision(project.id, sid, action="label", label=samples[sid].gold,
                              who="simulated")
    result = train(store, project, replace(base, method="candist"))
    exported = _export_accuracy(store, project.id)
    emit({"dataset": name, "human_decisions": k, "student_accuracy_before": round(before, 4),
          **result, "export_accuracy": round(exported, 4)})


def _export_accuracy(store, project_id: int) -> float:
    rows = list(store.export_rows(project_id))
    final = [r.human_label if r.human_action == "label" else r.student_label for r in rows]
    return sum(f == r.gold for f, r in zip(final, rows)) / len(rows)


def ablation(store, project, name, base: StudentConfig) -> None:
    annotate(store, project, "ca_all")
    for title, method, components, regularise in ABLATION:
        config = replace(base, method=method, components=components,
                         consistency=base.consistency if regularise else 0.0,
                         mixup=base.mixup and regularise)
        emit({"dataset": name, "ablation": title, "strategy": "ca_all",
              **train(store, project, config)})


def _override(config: StudentConfig, item: str) -> tuple[str, object]:
    """"name=value" -> (name, value typed like the field's current value). The knobs that
    only ever lost (``head_lr_mult``) or were never set (``augment_p``, ``mixup_alpha``,
    ``eta_max``) left StudentConfig: their rows in bench/RESULTS.md were measured at commit
    1486286; ``head_init=labels`` is still accepted."""
    name, _, raw = item.partition("=")
    if name not in {f.name for f in fields(config)}:
        raise SystemExit(f"--set {item}: StudentConfig has no field {name!r}")
    current = getattr(config, name)
    if isinstance(current, bool):
        return name, raw.lower() in ("1", "true", "yes", "on")
    if isinstance(current, (int, float)):
        return name, type(current)(raw)
    if current is None and raw.lstrip("-").isdigit():   # an optional number (extra_epochs)
        return name, int(raw)
    return name, raw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="trec,banking77,medical_abstracts")
    parser.add_argument("--sizes", default=",".join(f"{k}={v}" for k, v in SIZES.items()))
    parser.add_argument("--strategies", default="ca_add,ca_all")
    parser.add_argument("--methods", default="sa,uniform,candist")
    parser.add_argument("--human", type=int, default=0)
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--no-test", action="store_true",
                        help="skip the test-split scores (no model folders saved)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a StudentConfig field for every student (experiments)")
    args = parser.parse_args()
    global TEST_SPLIT
    TEST_SPLIT = not args.no_test
    sizes = {k: int(v) for k, v in (s.split("=") for s in args.sizes.split(","))}
    base = StudentConfig() if args.epochs is None else StudentConfig(epochs=args.epochs)
    base = replace(base, **dict(_override(base, item) for item in args.set))
    if args.set:
        emit({"overrides": args.set})
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            with Store(Path(tmp) / f"{name}.db") as store:
                project = make_pool(store, name, sizes.get(name, 1500), Path(tmp))
                if args.ablation:
                    ablation(store, project, name, base)
                else:
                    main_table(store, project, name, base, args.strategies.split(","),
                               args.methods.split(","), args.human)


if __name__ == "__main__":
    main()
