"""Conformal candidate sets: choose the set threshold from the audit so that the sets hold
the true label with probability >= the target coverage (split conformal prediction).

Calibration: the audited texts (a uniform random sample, labeled blind) and the teacher's
score of their audit label. With nonconformity ``1 - score`` and ``n`` calibration texts,
the threshold ``qhat`` is the ``ceil((n + 1)(1 - alpha)) / n`` empirical quantile of the
calibration nonconformities; a text's set is every label with ``1 - score <= qhat``. For a
text exchangeable with the audit (any text of the project, drawn at random), the set holds
its true label with probability >= 1 - alpha (and, with untied scores, < 1 - alpha +
1 / (n + 1)). The top label is always kept, which can only raise coverage.

Scores: the offline teacher's label probabilities (recomputed from the encoder, which is
deterministic and free: the stored ``raw`` keeps only the top five); for an LLM teacher run,
its candidate ranking (the label at rank ``r`` of a set scores ``(C - r) / C``, labels
outside the set 0), since no per-label probabilities are stored.

This is the few lines of numpy the method needs. crepes, mapie and torchcp wrap the same
quantile around a fitted learner's ``predict_proba``; our scores are already computed and
stored per run, so a dependency would add an adapter and no method.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .embedding_cache import DEFAULT_ENCODER_NAME
from .records import TeacherError, TeacherRun

STRATEGY = "conformal"
DEFAULT_COVERAGE = 0.9


@dataclass(frozen=True)
class Threshold:
    """A calibrated split-conformal threshold: labels scoring >= ``score`` join a set."""

    coverage: float      # the target 1 - alpha
    n: int               # calibration texts
    qhat: float          # nonconformity quantile (1 - score)
    level: float         # the quantile's level, ceil((n + 1)(1 - alpha)) / n

    @property
    def score(self) -> float:
        return 1.0 - self.qhat

    @property
    def guarantee(self) -> str:
        return (f"P(true label in set) >= {self.coverage:.2f} for a text drawn at random "
                f"from the project (split conformal, {self.n} audited texts)")


def min_calibration(coverage: float) -> int:
    """Fewest calibration texts for which the quantile level stays <= 1."""
    alpha = 1 - coverage
    return max(1, math.ceil((1 - alpha) / alpha - 1e-9))


def calibrate(true_scores: np.ndarray, *, coverage: float = DEFAULT_COVERAGE) -> Threshold:
    """The split-conformal threshold from the scores the teacher gave the true label of
    each calibration text."""
    if not 0 < coverage < 1:
        raise TeacherError(f"The target coverage must be between 0 and 1, got {coverage}.")
    scores = np.asarray(true_scores, dtype=float)
    n = len(scores)
    need = min_calibration(coverage)
    if n < need:
        raise TeacherError(f"Conformal sets at {coverage:.0%} need at least {need} audited "
                           f"texts, and there are {n}: audit more texts first.")
    rank = math.ceil((n + 1) * coverage - 1e-9)   # float noise must not add a rank
    # The rank-th smallest nonconformity: the ceil((n+1)(1-alpha))/n empirical quantile
    # (np.quantile's "higher" method would interpolate over n - 1 gaps: one rank too far).
    qhat = float(np.sort(1.0 - scores)[min(rank, n) - 1])
    return Threshold(coverage, n, qhat, rank / n)


def prediction_sets(scores: np.ndarray, threshold: Threshold) -> list[list[int]]:
    """Label indices per row, highest score first: those with ``1 - score <= qhat``, and
    always the top label."""
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, axis=1, kind="stable")
    keep = (1.0 - scores) <= threshold.qhat + 1e-12
    return [[int(j) for j in row if keep[i, j]] or [int(row[0])]
            for i, row in enumerate(order)]


def rank_scores(candidates: list[list[str]], names: list[str]) -> np.ndarray:
    """(N, C) scores from ranked candidate sets: ``(C - r) / C`` at rank ``r``, else 0."""
    index = {n: i for i, n in enumerate(names)}
    c = len(names)
    out = np.zeros((len(candidates), c))
    for i, cands in enumerate(candidates):
        for r, label in enumerate(cands):
            if label in index:
                out[i, index[label]] = (c - r) / c
    return out


def base_run(store, project_id: int) -> TeacherRun:
    """The newest-used teacher run with annotations that is not itself conformal."""
    for run in store.teacher_runs(project_id):
        if run.strategy != STRATEGY and store.done_sample_ids(run.id):
            return run
    raise TeacherError("Conformal sets are derived from a teacher run's scores: run "
                       "'annotate' first (any strategy).")


def run_scores(store, run: TeacherRun, names: list[str], *, teacher=None
               ) -> tuple[list[int], np.ndarray, str]:
    """(sample ids, (N, C) scores, score kind) of a teacher run's annotated samples."""
    rows = [r for r in store.annotations(run.id) if r.candidates]
    ids = [r.sample_id for r in rows]
    if run.teacher == "offline":
        from .teacher import (make_teacher, rank_labels, save_embedding_cache,
                              with_embedding_cache)
        if teacher is None:
            teacher = make_teacher("offline", model=None if run.model == DEFAULT_ENCODER_NAME
                                   else run.model)
        teacher = with_embedding_cache(store, run.project_id, teacher)   # no second pass
        schema = store.label_schema(run.project_id)
        temperature = run.params.get("softmax_temperature", 0.05)
        probs = rank_labels(teacher.similarities(schema, [r.text for r in rows]),
                            temperature=temperature) if rows else np.zeros((0, len(names)))
        save_embedding_cache(teacher)
        return ids, probs, "probability"
    return ids, rank_scores([r.candidates for r in rows], names), "rank"


@dataclass(frozen=True)
class ConformalRun:
    run_id: int
    base_run: int
    threshold: Threshold
    score_kind: str
    annotated: int
    mean_labels: float
    reused: bool

    def describe(self) -> str:
        return (f"Run #{self.run_id} done: conformal sets from run #{self.base_run} at "
                f"{self.threshold.coverage:.0%} target coverage, {self.annotated} texts, "
                f"{self.mean_labels:.2f} labels on average; score >= "
                f"{self.threshold.score:.4f} ({self.threshold.guarantee}).")

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "status": "done", "base_run": self.base_run,
                "coverage_target": self.threshold.coverage, "n": self.threshold.n,
                "threshold": self.threshold.score, "score": self.score_kind,
                "annotated": self.annotated, "mean_labels": self.mean_labels,
                "guarantee": self.threshold.guarantee, "reused": self.reused}


def conformal_annotate(store, project_id: int, *, coverage: float = DEFAULT_COVERAGE,
                       teacher=None) -> ConformalRun:
    """A new teacher run whose sets are the conformal sets at ``coverage``, calibrated on
    the audit labels and derived from the latest non-conformal run's scores (no new LLM
    calls). Its params record the threshold, ``n`` and the guarantee. The same inputs give
    the same params, so doing it twice reuses the run (and makes it the current one)."""
    names = store.label_schema(project_id).names
    base = base_run(store, project_id)
    ids, scores, kind = run_scores(store, base, names, teacher=teacher)
    row_of = {sid: i for i, sid in enumerate(ids)}
    index = {n: i for i, n in enumerate(names)}
    audit = {sid: d.label for sid, d in store.audit_decisions(project_id).items()
             if d.action == "label" and d.label in index and sid in row_of}
    true_scores = np.array([scores[row_of[sid], index[label]] for sid, label in audit.items()])
    threshold = calibrate(true_scores, coverage=coverage)
    sets = prediction_sets(scores, threshold)
    params = {"strategy": STRATEGY, "coverage": coverage, "base_run": base.id, "score": kind,
              "threshold": round(threshold.score, 6), "n": threshold.n,
              "quantile_level": round(threshold.level, 6), "guarantee": threshold.guarantee}
    mean = float(np.mean([len(s) for s in sets])) if sets else 0.0
    existing = store.find_teacher_run(project_id, teacher=base.teacher, model=base.model,
                                      strategy=STRATEGY, params=params)
    summary = {"annotated": len(sets), "mean_labels": mean, "status": "done"}
    if existing is not None:
        store.set_teacher_run_status(existing, "running")
        store.set_teacher_run_status(existing, "done", summary)
        return ConformalRun(existing, base.id, threshold, kind, len(sets), mean, True)
    run_id = store.create_teacher_run(project_id, teacher=base.teacher, model=base.model,
                                      strategy=STRATEGY, params=params)
    store.record_annotations(run_id, [
        {"sample_id": sid, "candidates": [names[j] for j in s], "label": names[s[0]],
         "confidence": float(scores[i, s[0]]),
         "raw": " ".join(f"{names[j]}={scores[i, j]:.3f}" for j in s)}
        for i, (sid, s) in enumerate(zip(ids, sets))])
    store.set_teacher_run_status(run_id, "done", summary)
    return ConformalRun(run_id, base.id, threshold, kind, len(sets), mean, False)
