"""The review queue's signals: the same columns as a row-by-row reading of the store, kept
in step with imports, annotations, predictions and decisions although the run columns are
cached on the store (the Review page's first render at 100,000 texts depends on it)."""
from __future__ import annotations

import numpy as np
import pytest

from candist_core.metrics import entropy
from candist_core.schema import build_schema

LABELS = ["pos", "neg", "neutral"]


def reference(store, project_id: int) -> dict:
    """What the signals must say, read one sample at a time through the public API."""
    samples = store.samples(project_id)
    teacher = store.latest_teacher_run(project_id)
    student = store.latest_student_run(project_id)
    ann = {a.sample_id: a for a in store.annotations(teacher.id)} if teacher else {}
    pred = {p.sample_id: p for p in store.predictions(student.id)} if student else {}
    decided = store.current_decisions(project_id)
    out = {"sample_id": [], "candidates": [], "teacher_label": [], "teacher_confidence": [],
           "student_label": [], "student_confidence": [], "entropy": [],
           "out_of_candidate": [], "label_issue": [], "oos_confidence": [],
           "decided": []}
    for s in samples:
        a, p = ann.get(s.id), pred.get(s.id)
        out["sample_id"].append(s.id)
        out["candidates"].append(list(a.candidates) if a and a.candidates else [])
        out["teacher_label"].append(a.label if a else None)
        out["teacher_confidence"].append(a.confidence if a and a.confidence is not None
                                         else np.nan)
        out["student_label"].append(p.label if p else None)
        out["student_confidence"].append(p.confidence if p else np.nan)
        out["entropy"].append(p.entropy if p else np.nan)
        out["out_of_candidate"].append(bool(p.out_of_candidate) if p else False)
        out["label_issue"].append(p.label_issue if p and p.label_issue is not None
                                  else np.nan)
        out["oos_confidence"].append(p.oos_confidence if p and p.oos_confidence is not None
                                     else np.nan)
        out["decided"].append(s.id in decided)
    return out


def assert_same(store, project_id: int) -> None:
    got, want = store.review_signals(project_id), reference(store, project_id)
    for key, values in want.items():
        if key.endswith("confidence") or key in ("entropy", "label_issue", "oos_confidence"):
            np.testing.assert_allclose(got[key], np.array(values, dtype=float), rtol=1e-6,
                                       err_msg=key)
        else:
            assert list(np.asarray(got[key]).tolist() if isinstance(got[key], np.ndarray)
                        else got[key]) == values, key


@pytest.fixture
def project(store):
    schema = build_schema("sentiment", LABELS)
    project = store.create_project("signals", schema)
    store.insert_samples(project.id, [(f"e{i}", f"text {i}", None) for i in range(12)])
    return project


def annotate(store, project_id: int, ids: list[int], *, errors=()) -> int:
    run = store.create_teacher_run(project_id, teacher="offline", model="m", strategy="ca_all",
                                   params={})
    for i, sid in enumerate(ids):
        if sid in errors:
            store.record_annotation(run, sid, candidates=None, label=None, confidence=None,
                                    raw=None, error_kind="no_label", error="no valid label")
        else:
            cands = LABELS[: 1 + i % 3]
            store.record_annotation(run, sid, candidates=cands, label=cands[0],
                                    confidence=0.4 + 0.05 * i, raw=None)
    store.set_teacher_run_status(run, "done")
    return run


def predict(store, project_id: int, teacher_run: int, ids: list[int], *, seed: int) -> int:
    run = store.create_student_run(project_id, teacher_run_id=teacher_run, method="candist",
                                   config={})
    probs = np.random.default_rng(seed).dirichlet(np.ones(3), size=len(ids)).astype(np.float32)
    flags = np.arange(len(ids)) % 2 == 0
    issue = np.where(np.arange(len(ids)) % 3 == 0, np.nan, probs[:, 0])   # gaps: NULL
    store.write_predictions(run, ids, probs, LABELS, entropy=entropy(probs),
                            out_of_candidate=flags, high_confidence=~flags, small_loss=flags,
                            label_issue=issue, oos_confidence=probs[:, 1])
    store.finish_student_run(run, status="done", best_epoch=1)
    return run


def test_signals_match_the_store_row_by_row_with_gaps_everywhere(store, project):
    ids = [s.id for s in store.samples(project.id)]
    assert_same(store, project.id)                       # nothing annotated yet
    teacher = annotate(store, project.id, ids[:9], errors={ids[4]})
    assert_same(store, project.id)                       # 3 texts unannotated, 1 error row
    predict(store, project.id, teacher, ids[2:10], seed=0)
    assert_same(store, project.id)                       # the student covers a middle slice
    store.record_decision(project.id, ids[3], action="label", label="neg")
    store.record_decision(project.id, ids[5], action="skip")
    assert_same(store, project.id)


def test_cached_signals_follow_every_change_that_matters(store, project):
    ids = [s.id for s in store.samples(project.id)]
    teacher = annotate(store, project.id, ids)
    predict(store, project.id, teacher, ids, seed=1)
    assert_same(store, project.id)
    store.insert_samples(project.id, [("late", "imported after the first read", None)])
    assert_same(store, project.id)                       # a new text appears, unannotated
    student = predict(store, project.id, teacher, ids, seed=2)
    assert_same(store, project.id)                       # a newer student run
    probs = np.full((len(ids), 3), 1 / 3, dtype=np.float32)
    flags = np.zeros(len(ids), dtype=bool)
    store.write_predictions(student, ids, probs, LABELS, entropy=entropy(probs),
                            out_of_candidate=flags, high_confidence=flags, small_loss=flags)
    assert_same(store, project.id)                       # the same run's rows rewritten
    annotate(store, project.id, ids[:4])
    assert_same(store, project.id)                       # a newer teacher run
    store.record_decision(project.id, ids[0], action="label", label="pos")
    assert store.review_signals(project.id)["decided"].sum() == 1
    store.undo_decision(project.id)
    assert store.review_signals(project.id)["decided"].sum() == 0


def test_a_running_teacher_run_is_read_fresh(store, project):
    ids = [s.id for s in store.samples(project.id)]
    run = store.create_teacher_run(project.id, teacher="offline", model="m",
                                   strategy="ca_all", params={})
    store.record_annotation(run, ids[0], candidates=None, label=None, confidence=None,
                            raw=None, error_kind="timeout", error="timed out")
    store.record_annotation(run, ids[1], candidates=["pos"], label="pos", confidence=0.9,
                            raw=None)
    assert_same(store, project.id)
    # the error row becomes a success in place (same row id, same count)
    store.record_annotation(run, ids[0], candidates=["neg", "pos"], label="neg",
                            confidence=0.5, raw=None)
    assert store.review_signals(project.id)["candidates"][0] == ["neg", "pos"]
    assert_same(store, project.id)


def test_the_reviewers_pace_counts_only_the_last_ten_minutes():
    from datetime import datetime, timezone

    from candist_core.review import recent_pace
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc).timestamp()

    def at(seconds_ago):
        return datetime.fromtimestamp(now - seconds_ago, timezone.utc).isoformat()

    # Five decisions 30 s apart just now, and an old burst before a break.
    created = [at(s) for s in (0, 30, 60, 90, 120)] + [at(3600 + s) for s in range(0, 50, 5)]
    assert recent_pace(created, now=now) == pytest.approx(2.0)
    assert recent_pace(created[:1], now=now) == 0.0 and recent_pace(["?"], now=now) == 0.0
    # Two quick decisions are no pace yet: it needs five within the window.
    assert recent_pace(created[:4], now=now) == 0.0
    assert recent_pace(created[:2], now=now, least=2) == pytest.approx(2.0)


def test_the_pace_says_what_it_was_measured_on():
    from datetime import datetime, timezone

    from candist_core.review import pace_text
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc).timestamp()

    def at(seconds_ago):
        return datetime.fromtimestamp(now - seconds_ago, timezone.utc).isoformat()

    # The walk: 9 decisions in 40 s read as "over the last 10 minutes".
    quick = [at(5 * k) for k in range(9)]
    assert pace_text(quick, now=now) == ("12.0 decisions a minute (8 decisions in the 40 s after the first of "
                                       "your last 9)")
    slow = [at(30 * k) for k in range(5)]
    assert pace_text(slow, now=now) == ("2.0 decisions a minute (4 decisions in the 2 min after the first of "
                                      "your last 5)")
    assert pace_text(slow[:4], now=now) == "shown after 5 decisions within 10 minutes"
