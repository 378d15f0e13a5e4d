"""The offline teacher: candidate-set rules on hand-made probabilities, then real MiniLM on a
real TREC slice; the run summary sentence and make_teacher that the CLI and the page share."""
from collections import Counter

import numpy as np
import pytest

from candist_core.encoder import shared_encoder
from candist_core.importing import ImportOptions, import_csv
from candist_core.metrics import project_metrics
from candist_core.records import TeacherError
from candist_core.teacher import (OfflineTeacher, RunSummary, TeacherConfig, annotate_project,
                                  candidate_sets, make_teacher, rank_labels, resumable_run)

PROBS = np.array([[0.50, 0.30, 0.15, 0.05],
                  [0.10, 0.80, 0.06, 0.04]])


def test_sa_keeps_the_top_label():
    assert candidate_sets(PROBS, strategy="sa", r_add=0.5, r_all=0.3) == [[0], [1]]


def test_ca_add_and_ca_all_keep_labels_close_to_the_top_most_probable_first():
    assert candidate_sets(PROBS, strategy="ca_add", r_add=0.5, r_all=0.3) == [[0, 1], [1]]
    assert candidate_sets(PROBS, strategy="ca_all", r_add=0.5, r_all=0.3) == [[0, 1, 2], [1]]


def test_sc_keeps_the_most_frequent_of_k_draws():
    sets = candidate_sets(np.array([[0.98, 0.01, 0.01]]), strategy="sc", r_add=0.5,
                          r_all=0.3, samples=20, top_k=2)
    assert sets[0][0] == 0 and len(sets[0]) <= 2


def test_softmax_temperature_sharpens():
    sims = np.array([[0.5, 0.4]])
    assert rank_labels(sims, temperature=0.05)[0, 0] > rank_labels(sims, temperature=1)[0, 0]
    assert rank_labels(sims, temperature=0.05).sum() == pytest.approx(1.0)


def test_a_run_summary_is_one_sentence():
    summary = RunSummary(run_id=3, total=10, already_done=2, annotated=7, failed=1,
                         requests=9, cached=1, prompt_tokens=100, completion_tokens=20,
                         cost=0.00123, errors=Counter(timeout=1), status="incomplete")
    assert summary.describe() == (
        "Run #3 incomplete: 7 annotated now, 2 already done, 1 failed (errors: timeout 1); "
        "9 requests, 1 cached replies, 120 tokens, $0.0012.")


def test_make_teacher_names_what_is_missing():
    with pytest.raises(TeacherError, match="needs a model name"):
        make_teacher("openai", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(TeacherError, match="Unknown teacher 'gpt'"):
        make_teacher("gpt")
    assert make_teacher("offline").kind == "offline"


@pytest.fixture
def trec_slice(store, trec_project, trec_dir):
    import_csv(store, trec_project.id, trec_dir / "train.csv",
               options=ImportOptions(gold_col="label"))
    return trec_project


def test_offline_candidates_cover_more_gold_labels_than_single_labels(store, trec_slice):
    teacher = OfflineTeacher(shared_encoder())
    sa = annotate_project(store, trec_slice.id, teacher, TeacherConfig(strategy="sa"),
                          limit=300)
    sa_metrics = project_metrics(store, trec_slice.id)["teacher"]
    ca = annotate_project(store, trec_slice.id, teacher, TeacherConfig(strategy="ca_all"),
                          limit=300)
    ca_metrics = project_metrics(store, trec_slice.id)["teacher"]
    assert sa.status == ca.status == "done"
    assert 0.3 < sa_metrics["sa_accuracy"] == sa_metrics["coverage"]
    assert sa_metrics["mean_labels"] == 1.0
    assert ca_metrics["coverage"] > sa_metrics["coverage"] + 0.15
    assert 1.5 < ca_metrics["mean_labels"] < 4
    assert ca_metrics["sa_accuracy"] == pytest.approx(sa_metrics["sa_accuracy"])


def test_rerunning_the_same_settings_resumes_the_same_run(store, trec_slice):
    teacher = OfflineTeacher(shared_encoder())
    first = annotate_project(store, trec_slice.id, teacher, TeacherConfig(), limit=50)
    second = annotate_project(store, trec_slice.id, teacher, TeacherConfig(), limit=80)
    assert second.run_id == first.run_id
    assert (second.already_done, second.annotated) == (50, 30)


def test_a_page_knows_before_a_run_which_run_resumes_and_what_it_already_covers(store,
                                                                                trec_slice):
    teacher = OfflineTeacher(shared_encoder())
    config = TeacherConfig()
    assert resumable_run(store, trec_slice.id, config, kind="offline", model=teacher.model,
                         limit=80) == (None, 0)
    first = annotate_project(store, trec_slice.id, teacher, config, limit=50)
    assert resumable_run(store, trec_slice.id, config, kind="offline", model=teacher.model,
                         limit=80) == (first.run_id, 50)
    assert resumable_run(store, trec_slice.id, config, kind="offline", model=teacher.model,
                         limit=20) == (first.run_id, 20)
    other = TeacherConfig(strategy="ca_all")
    assert resumable_run(store, trec_slice.id, other, kind="offline", model=teacher.model,
                         limit=80) == (None, 0)
