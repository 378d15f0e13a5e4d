"""Quality measures of candidate sets and student predictions (method page, section 3).

Pure functions over lists; :func:`project_metrics` gathers them from a store for the
CLI's ``metrics --json`` and the pages.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from .audit import quality_report
from .records import Annotation, StudentRun, TeacherRun


def candidate_metrics(candidates: Sequence[Sequence[str]], golds: Sequence[str | None], *,
                      num_classes: int, single: Sequence[str | None] | None = None) -> dict:
    """Coverage ``1-alpha``, ``beta``, their ``f1``, mean set size and (with ``single``, the
    teacher's one label per sample) SA accuracy, over the samples that have a gold label.

    ``candidates[i]`` is the (non-empty) set of sample ``i``; ``num_classes`` is C.
    Values are ``None`` when no sample has a gold label.
    """
    if len(candidates) != len(golds):
        raise ValueError("candidates and golds must have the same length")
    sizes = [len(c) for c in candidates]
    out = {
        "n": len(candidates),
        "mean_labels": _mean(sizes),
        "set_sizes": {str(k): v for k, v in sorted(Counter(sizes).items())},
        "beta": _mean([(num_classes - s) / (num_classes - 1) for s in sizes])
        if num_classes > 1 and sizes else None,
        "coverage": None, "f1": None, "sa_accuracy": None, "n_gold": 0,
    }
    pairs = [(set(c), g) for c, g in zip(candidates, golds) if g is not None]
    if not pairs:
        return out
    out["n_gold"] = len(pairs)
    coverage = sum(g in c for c, g in pairs) / len(pairs)
    out["coverage"] = coverage
    beta = out["beta"]
    out["f1"] = (2 * coverage * beta / (coverage + beta)) if (coverage + beta) > 0 else 0.0
    if single is not None:
        judged = [(s, g) for s, g in zip(single, golds) if g is not None]
        out["sa_accuracy"] = sum(s == g for s, g in judged) / len(judged)
    return out


def per_class_coverage(candidates: Sequence[Sequence[str]], golds: Sequence[str | None],
                       labels: Sequence[str], *, single: Sequence[str | None] | None = None
                       ) -> list[dict]:
    """For each gold class: its samples' coverage, beta, F1, mean set size and (with
    ``single``) SA accuracy, as :func:`candidate_metrics` defines them (one pass)."""
    c = len(labels)
    n, covered, size, right = Counter(), Counter(), Counter(), Counter()
    for i, (cands, gold) in enumerate(zip(candidates, golds)):
        if gold is None:
            continue
        n[gold] += 1
        size[gold] += len(cands)
        covered[gold] += gold in cands
        if single is not None:
            right[gold] += single[i] == gold
    rows = []
    for label in labels:
        k = n[label]
        if not k:
            rows.append({"label": label, "n": 0, "coverage": None, "beta": None, "f1": None,
                         "mean_labels": None, "sa_accuracy": None})
            continue
        coverage, mean = covered[label] / k, size[label] / k
        beta = (c - mean) / (c - 1) if c > 1 else None
        f1 = 2 * coverage * beta / (coverage + beta) if beta is not None and \
            coverage + beta > 0 else None
        rows.append({"label": label, "n": k, "coverage": coverage, "beta": beta, "f1": f1,
                     "mean_labels": mean,
                     "sa_accuracy": right[label] / k if single is not None else None})
    return rows


def accuracy(predicted: Sequence[str], reference: Sequence[str | None]) -> float | None:
    """Share of equal pairs among those with a reference; None when there is none."""
    pairs = [(p, r) for p, r in zip(predicted, reference) if r is not None]
    if not pairs:
        return None
    return sum(p == r for p, r in pairs) / len(pairs)


def teacher_run_metrics(store, run: TeacherRun, num_classes: int, *,
                        rows: list[Annotation] | None = None) -> dict:
    """Metrics of one teacher run; ``rows`` from ``store.annotation_summary`` if at hand."""
    rows = rows if rows is not None else store.annotation_summary(run.id)
    ok = [r for r in rows if r.candidates]
    invalid = sum(r.error_kind in ("no_valid_label", "unparseable") for r in rows)
    sets, golds, singles = [r.candidates for r in ok], [r.gold for r in ok], [r.label for r in ok]
    stats = candidate_metrics(sets, golds, num_classes=num_classes, single=singles)
    errors = Counter(r.error_kind for r in rows if r.error_kind)
    labels = store.label_schema(run.project_id).names
    per_class = per_class_coverage(sets, golds, labels, single=singles) \
        if stats["n_gold"] else []
    return {
        "run_id": run.id, "teacher": run.teacher, "model": run.model,
        "strategy": run.strategy, "status": run.status, "annotated": len(ok),
        "coverage": stats["coverage"], "mean_labels": stats["mean_labels"],
        "beta": stats["beta"], "f1": stats["f1"], "sa_accuracy": stats["sa_accuracy"],
        "n_gold": stats["n_gold"],      # the texts coverage and SA accuracy are measured on
        "invalid_rate": invalid / len(rows) if rows else 0.0,
        "set_sizes": stats["set_sizes"], "errors": dict(errors), "per_class": per_class,
        "summary": run.summary,
    }


def student_run_metrics(store, run: StudentRun) -> dict:
    """Accuracy of a student run's predictions against gold labels and human decisions."""
    by_sample = {p.sample_id: p.label for p in store.predictions(run.id)}
    gold = store.gold_labels(run.project_id)
    human = [(by_sample[sid], d.label, d.created < run.created) for sid, d in
             store.current_decisions(run.project_id).items()
             if d.action == "label" and sid in by_sample]
    unseen = [(p, h) for p, h, seen in human if not seen]
    return {
        "run_id": run.id, "method": run.method, "status": run.status,
        "accuracy": accuracy(list(by_sample.values()), [gold.get(s) for s in by_sample]),
        "n_gold": sum(1 for s in by_sample if gold.get(s) is not None),
        "human_accuracy": accuracy([p for p, _, _ in human], [h for _, h, _ in human]),
        # The run trained on the labels that existed when it started; those made since are
        # a held-out check (though the queue chose them: the hard texts).
        "human_labels": len(human), "human_labels_trained": len(human) - len(unseen),
        "human_accuracy_since": accuracy([p for p, _ in unseen], [h for _, h in unseen]),
        "epochs_run": len(run.epochs), "best_epoch": run.best_epoch,
        "predicted": len(by_sample),
    }


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of ``probs`` (N, C) -> (N,)."""
    probs = np.asarray(probs, dtype=np.float32)
    return -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(1)


def calibration_error(probs: np.ndarray, gold: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the gap between the top probability and the accuracy,
    averaged over ``bins`` equal-width confidence bins weighted by their share of texts
    (0: a shown 80 % is right 80 % of the time). ``gold``: class indices."""
    probs, gold = np.asarray(probs), np.asarray(gold)
    if not len(gold):
        return float("nan")
    confidence = probs.max(1)
    correct = probs.argmax(1) == gold
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum(abs(confidence[which == b].mean() - correct[which == b].mean())
                     * (which == b).sum() for b in range(bins) if (which == b).any())
                 / len(gold))


def project_metrics(store, project_id: int) -> dict:
    """The object printed by ``metrics --json`` (keys documented in the README)."""
    project = store.project_by_id(project_id)
    schema = store.label_schema(project_id)
    out = {"project": project.name, "labels": len(schema.labels),
           **store.status_counts(project_id), "teacher": None, "student": None}
    teacher = store.latest_teacher_run(project_id)
    if teacher:
        out["teacher"] = teacher_run_metrics(store, teacher, len(schema.labels))
    student = store.latest_student_run(project_id)
    if student:
        out["student"] = student_run_metrics(store, student)
    out["audit"] = quality_report(store, project_id).to_json()
    return out


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
