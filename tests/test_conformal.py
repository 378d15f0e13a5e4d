"""Conformal candidate sets: the finite-sample threshold worked by hand, the sets, and a
conformal run derived from a real offline-teacher run and a (simulated) audit."""
import shutil

import numpy as np
import pytest

from candist_core.conformal import (calibrate, conformal_annotate, min_calibration,
                                    prediction_sets, rank_scores)
from candist_core.metrics import project_metrics
from candist_core.records import TeacherError
from candist_core.store import Store
from test_audit import audit_with_gold, build_pool


def test_the_threshold_is_the_finite_sample_quantile():
    # n = 19 at 90 %: level ceil(20 * 0.9) / 19 = 18 / 19, the 18th smallest nonconformity.
    true_scores = np.linspace(0.95, 0.05, 19)          # nonconformities 0.05 .. 0.95
    t = calibrate(true_scores, coverage=0.9)
    assert (t.n, t.level) == (19, 18 / 19)
    assert t.qhat == pytest.approx(0.90) and t.score == pytest.approx(0.10)
    assert t.guarantee == ("P(true label in set) >= 0.90 for a text drawn at random from "
                           "the project (split conformal, 19 audited texts)")


def test_too_few_audited_texts_for_the_target_is_an_actionable_error():
    assert min_calibration(0.9) == 9 and min_calibration(0.95) == 19
    assert calibrate(np.full(9, 0.5), coverage=0.9).level == 1.0
    with pytest.raises(TeacherError, match=r"^Conformal sets at 90% need at least 9 audited "
                                           r"texts, and there are 8: audit more texts first\.$"):
        calibrate(np.full(8, 0.5), coverage=0.9)


def test_sets_hold_every_label_over_the_threshold_best_first_and_never_none():
    t = calibrate(np.full(9, 0.3), coverage=0.9)       # keep labels scoring >= 0.3
    scores = np.array([[0.2, 0.5, 0.3], [0.1, 0.15, 0.05]])
    assert prediction_sets(scores, t) == [[1, 2], [1]]


def test_llm_runs_score_labels_by_their_rank_in_the_set():
    scores = rank_scores([["b", "a"], ["c"]], ["a", "b", "c", "d"])
    np.testing.assert_allclose(scores, [[0.75, 1.0, 0, 0], [0, 0, 1.0, 0]])


@pytest.fixture(scope="module")
def trec_pool(tmp_path_factory):
    path = tmp_path_factory.mktemp("conformal") / "trec.db"
    build_pool(path)
    return path


@pytest.fixture
def store(trec_pool, tmp_path):
    shutil.copy(trec_pool, tmp_path / "trec.db")
    with Store(tmp_path / "trec.db") as opened:
        yield opened


def test_a_conformal_run_reaches_its_target_coverage_on_the_pool(store):
    project = store.get_project("trec")
    base = store.latest_teacher_run(project.id)
    audit_with_gold(store, project.id, 100, seed=1)
    result = conformal_annotate(store, project.id, coverage=0.9)
    run = store.teacher_run(result.run_id)
    assert store.latest_teacher_run(project.id).id == run.id != base.id
    assert (run.strategy, run.params["base_run"], run.params["n"], run.params["score"]) == \
        ("conformal", base.id, 100, "probability")
    assert run.params["threshold"] == pytest.approx(result.threshold.score, abs=1e-6)
    assert run.params["guarantee"].startswith("P(true label in set) >= 0.90")
    teacher = project_metrics(store, project.id)["teacher"]
    assert teacher["annotated"] == 400
    assert 0.87 <= teacher["coverage"] <= 0.97            # vs 0.77 for the CA_all sets
    assert teacher["mean_labels"] == pytest.approx(result.mean_labels)
    again = conformal_annotate(store, project.id, coverage=0.9)   # same inputs: same run
    assert (again.run_id, again.reused) == (run.id, True)


def test_conformal_sets_need_an_audit(store):
    with pytest.raises(TeacherError, match="need at least 9 audited texts, and there are 0"):
        conformal_annotate(store, store.get_project("trec").id, coverage=0.9)
