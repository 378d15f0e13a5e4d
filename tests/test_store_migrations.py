"""A database written by an earlier version opens, migrates and reads the same.

tests/fixtures/schema-v1.db was written by main at 4bdedbe (schema version 1, before the
store became a package); tests/fixtures/make_schema_v1.py is the script that wrote it. The
expected values below are what that version read from it.
"""
import shutil

import numpy as np
import pytest

from candist_core.exporting import export_csv_text
from candist_core.metrics import project_metrics
from candist_core.store import SCHEMA_VERSION, Store
from candist_core.store.connection import MIGRATIONS
from conftest import FIXTURES


@pytest.fixture
def old(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(FIXTURES / "schema-v1.db", path)
    with Store(path) as store:
        yield store


def test_an_old_database_is_migrated_in_place_and_stays_sound(old, tmp_path):
    assert old.schema_version == SCHEMA_VERSION == max(MIGRATIONS)
    assert old.integrity_check() == "ok"
    with Store(tmp_path / "old.db") as again:      # opening twice migrates nothing twice
        assert again.schema_version == SCHEMA_VERSION


def test_the_old_use_order_still_picks_the_resumed_run(old):
    project = old.get_project("animals")
    runs = old.teacher_runs(project.id)
    assert [(r.id, r.status, r.use_order) for r in runs] == [(1, "done", 3),
                                                             (2, "cancelled", 2)]
    assert old.latest_teacher_run(project.id).id == 1
    assert old.teacher_run(1).params == {"r_add": 0.5, "softmax_temperature": 0.05,
                                         "strategy": "ca_add"}


def test_metrics_read_from_an_old_database_are_unchanged(old):
    metrics = project_metrics(old, old.get_project("animals").id)
    counts = {k: metrics[k] for k in ("samples", "with_gold", "annotated", "ambiguous",
                                      "reviewed", "teacher_runs", "student_runs")}
    assert counts == {"samples": 4, "with_gold": 3, "annotated": 3, "ambiguous": 2,
                      "reviewed": 3, "teacher_runs": 2, "student_runs": 1}
    teacher = metrics["teacher"]
    assert (teacher["run_id"], teacher["coverage"], teacher["sa_accuracy"],
            teacher["invalid_rate"], teacher["set_sizes"], teacher["errors"]) == \
        (1, 1.0, 2 / 3, 0.25, {"1": 1, "2": 2}, {"no_valid_label": 1})
    assert metrics["student"] == {"run_id": 1, "method": "candist", "status": "done",
                                  "accuracy": 1 / 3, "human_accuracy": 1.0, "epochs_run": 1,
                                  "best_epoch": 1, "predicted": 4,
                                  # keys added since (session 10): the same reading
                                  "n_gold": 3, "human_labels": 2,
                                  "human_labels_trained": 1, "human_accuracy_since": 1.0}


def test_the_export_of_an_old_database_is_byte_for_byte_the_same(old):
    # The same bytes as 4bdedbe wrote, plus the annotators column (schema 5): the people
    # with a current label on each text (a2's current decision is a skip, a4 has none).
    assert export_csv_text(old, old.get_project("animals").id) == (
        'id,text,label,label_source,confidence,candidates,gold,annotators\n'
        'a1,is my cat ok,dog,human,1.0000,"[""cat"", ""dog""]",cat,1\n'
        'a2,a dog barks,dog,student,0.8000,"[""dog""]",dog,0\n'
        'a3,bird song,cat,human,1.0000,,,1\n'
        'a4,\'=cmd|\' /C calc\'!A0,bird,student,0.4000,"[""cat"", ""bird""]",cat,0\n')


def test_decisions_undo_history_cache_and_predictions_survive(old):
    project = old.get_project("animals")
    current = old.current_decisions(project.id)
    assert {sid: (d.action, d.label, d.who) for sid, d in current.items()} == {
        1: ("label", "dog", "ann"), 2: ("skip", None, "ann"), 3: ("label", "cat", "bob")}
    assert [d.action for d in old.decision_log(project.id)] == ["label", "undo", "label",
                                                                "skip", "label"]
    assert old.cache_get("k1")["content"] == '{"labels": ["cat"]}'
    predictions = old.predictions(1)
    np.testing.assert_allclose(predictions[0].probs, [0.2, 0.7, 0.1], rtol=1e-6)
    assert [p.out_of_candidate for p in predictions] == [False, False, False, True]
    assert old.student_run(2).status == "failed"
    signals = old.review_signals(project.id)
    assert signals["decided"].tolist() == [True, True, True, False]
    page = old.prediction_page(1, agreement="disagrees_with_teacher")
    assert [(r["id"], r["student"], r["teacher"], r["human"]) for r in page] == [
        ("a1", "dog", "cat", "dog")]
    # A skip shows as one in the Student labels table (it was blank, like no decision).
    humans = {r["id"]: r["human"] for r in old.prediction_page(1)}
    assert humans == {"a1": "dog", "a2": "(skipped)", "a3": "cat", "a4": None}
