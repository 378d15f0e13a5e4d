"""The store: projects, migrations, append-only decisions with undo, durability settings."""
import socket
import sqlite3

import numpy as np
import pytest

from candist_core.distill import fail_interrupted_runs
from candist_core.metrics import entropy
from candist_core.records import ProjectError
from candist_core.schema import build_schema
from candist_core.store import SCHEMA_VERSION, Store
from candist_core.workers import worker_id

SCHEMA = build_schema("task", ["a", "b", "c"])


def test_a_new_database_is_migrated_and_in_wal_mode(store):
    assert store.schema_version == SCHEMA_VERSION
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.integrity_check() == "ok"


def test_reopening_keeps_projects(tmp_path):
    with Store(tmp_path / "x.db") as s:
        s.create_project("one", SCHEMA)
    with Store(tmp_path / "x.db") as s:
        assert [p.name for p in s.list_projects()] == ["one"]
        assert s.label_schema(s.get_project("one").id) == SCHEMA


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / "new.db")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ProjectError, match="written by a newer CanDist Studio"):
        Store(tmp_path / "new.db")


def test_duplicate_and_missing_projects(store):
    store.create_project("p", SCHEMA)
    with pytest.raises(ProjectError) as err:
        store.create_project("p", SCHEMA)
    assert str(err.value) == f"Project 'p' already exists in {store.path}."
    with pytest.raises(ProjectError) as err:
        store.get_project("q")
    assert str(err.value) == f"No project named 'q' in {store.path}. Known projects: p."


@pytest.mark.parametrize("name", ["../etc", "a/b", "a\\b", "", "   ", "x" * 101, "..",
                                  "name\nwith newline"])
def test_project_names_with_path_parts_are_refused(store, name):
    with pytest.raises(ProjectError):
        store.create_project(name, SCHEMA)


def _project_with_samples(store, n=3):
    project = store.create_project("p", SCHEMA)
    store.insert_samples(project.id, [(f"s{i}", f"text {i}", None) for i in range(n)])
    return project, [s.id for s in store.samples(project.id)]


def test_the_latest_decision_is_the_current_one_and_the_log_keeps_all(store):
    project, ids = _project_with_samples(store)
    store.record_decision(project.id, ids[0], action="label", label="a")
    store.record_decision(project.id, ids[0], action="label", label="b", in_candidates=False)
    store.record_decision(project.id, ids[1], action="skip")
    current = store.current_decisions(project.id)
    assert {k: (v.action, v.label) for k, v in current.items()} == {
        ids[0]: ("label", "b"), ids[1]: ("skip", None)}
    assert current[ids[0]].in_candidates is False
    assert len(store.decision_log(project.id)) == 3


def test_only_decisions_on_ambiguous_texts_count_towards_the_ambiguous_left(store):
    from candist_core.workflow import ambiguous_left, next_step
    project, ids = _project_with_samples(store, n=4)
    run = store.create_teacher_run(project.id, teacher="offline", model="m", strategy="ca_all",
                                   params={})
    sets = [["a", "b"], ["a", "b"], ["a"], ["b"]]        # two ambiguous texts, two clear
    store.record_annotations(run, [{"sample_id": i, "candidates": c, "label": c[0],
                                    "confidence": 0.5} for i, c in zip(ids, sets)])
    store.set_teacher_run_status(run, "done")
    store.record_decision(project.id, ids[2], action="label", label="a")     # a clear text
    store.record_decision(project.id, ids[3], action="skip")                 # a clear text
    store.record_decision(project.id, ids[0], action="label", label="b")     # ambiguous
    counts = store.status_counts(project.id)
    assert (counts["ambiguous"], counts["reviewed"], counts["ambiguous_reviewed"]) == (2, 3, 1)
    assert ambiguous_left({**counts, "student_runs": 1, "with_gold": 1}) == 1
    step = next_step({**counts, "student_runs": 1, "with_gold": 1})
    assert "1 of the 2 ambiguous texts" in step
    # the reviewed count (3) says why it is not 2 - 3
    assert "2 of the 3 reviewed had one candidate and do not count here" in step


def test_undo_restores_the_previous_decision_and_is_logged(store):
    project, ids = _project_with_samples(store)
    store.record_decision(project.id, ids[0], action="label", label="a", who="ann")
    store.record_decision(project.id, ids[0], action="label", label="b", who="ann")
    undone = store.undo_decision(project.id, who="ann")
    assert undone.label == "b"
    assert store.current_decisions(project.id)[ids[0]].label == "a"
    store.undo_decision(project.id, who="ann")
    assert store.current_decisions(project.id) == {}
    assert store.undo_decision(project.id, who="ann") is None
    assert [r.action for r in store.decision_log(project.id)] == ["undo", "undo", "label",
                                                                     "label"]


def test_undo_only_touches_the_reviewers_own_decisions(store):
    project, ids = _project_with_samples(store)
    store.record_decision(project.id, ids[0], action="label", label="a", who="ann")
    store.record_decision(project.id, ids[1], action="label", label="b", who="bob")
    assert store.undo_decision(project.id, who="ann").sample_id == ids[0]
    assert list(store.current_decisions(project.id)) == [ids[1]]


def test_decisions_are_visible_to_another_connection_at_once(store):
    project, ids = _project_with_samples(store)
    store.record_decision(project.id, ids[2], action="label", label="c")
    with Store(store.path) as other:
        assert other.current_decisions(project.id)[ids[2]].label == "c"


def test_annotation_errors_are_replaced_by_a_later_success(store):
    project, ids = _project_with_samples(store)
    run = store.create_teacher_run(project.id, teacher="openai", model="m", strategy="sa",
                                   params={})
    store.record_annotation(run, ids[0], candidates=None, label=None, confidence=None,
                            raw=None, error_kind="timeout", error="timed out")
    assert store.done_sample_ids(run) == set()
    store.record_annotation(run, ids[0], candidates=["a"], label="a", confidence=1.0, raw="a")
    assert store.done_sample_ids(run) == {ids[0]}
    assert len(store.annotations(run)) == 1


def test_predictions_round_trip_probabilities(store):
    project, ids = _project_with_samples(store)
    run = store.create_student_run(project.id, teacher_run_id=None, method="candist",
                                   config={})
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]], dtype=np.float32)
    flags = np.zeros(3, dtype=bool)
    store.write_predictions(run, ids, probs, SCHEMA.names, entropy=entropy(probs),
                            out_of_candidate=flags, high_confidence=flags, small_loss=flags)
    rows = store.predictions(run)
    assert [r.label for r in rows] == ["a", "c", "b"]
    np.testing.assert_allclose(rows[1].probs, probs[1])


def test_a_run_left_running_by_a_dead_process_is_marked_failed(store):
    project, _ = _project_with_samples(store)
    live = store.create_student_run(project.id, teacher_run_id=None, method="candist",
                                    config={}, worker=worker_id())
    dead = store.create_student_run(project.id, teacher_run_id=None, method="candist",
                                    config={}, worker=f"{socket.gethostname()}:999999999")
    assert fail_interrupted_runs(store, project.id) == 1
    assert store.student_run(dead).status == "failed"
    assert store.student_run(live).status == "running"


def test_the_latest_teacher_run_is_the_one_used_last(store):
    project, ids = _project_with_samples(store)
    first = store.create_teacher_run(project.id, teacher="offline", model="m", strategy="sa",
                                     params={})
    second = store.create_teacher_run(project.id, teacher="offline", model="m",
                                      strategy="ca_all", params={})
    for run in (first, second):
        store.record_annotations(run, [{"sample_id": ids[0], "candidates": ["a"],
                                        "label": "a"}])
    assert store.latest_teacher_run(project.id).id == second
    store.set_teacher_run_status(first, "running")   # resumed
    store.set_teacher_run_status(first, "done")
    assert store.latest_teacher_run(project.id).id == first


def test_a_predictions_write_that_fails_half_way_leaves_the_previous_ones(store):
    project, ids = _project_with_samples(store)
    run = store.create_student_run(project.id, teacher_run_id=None, method="candist",
                                   config={})
    probs = np.full((3, 3), 1 / 3, dtype=np.float32)
    flags = np.zeros(3, dtype=bool)
    store.write_predictions(run, ids, probs, SCHEMA.names, entropy=entropy(probs),
                            out_of_candidate=flags, high_confidence=flags, small_loss=flags)
    with pytest.raises(sqlite3.IntegrityError):   # the last sample does not exist
        store.write_predictions(run, [ids[0], ids[1], 10_000], probs[::-1], SCHEMA.names,
                                entropy=entropy(probs), out_of_candidate=flags,
                                high_confidence=flags, small_loss=flags)
    assert [p.sample_id for p in store.predictions(run)] == ids
    assert store.integrity_check() == "ok"
    store.record_decision(project.id, ids[0], action="skip")   # the connection still works


def test_a_pages_choices_are_kept_per_project_and_survive_reopening(tmp_path):
    with Store(tmp_path / "x.db") as s:
        one, two = s.create_project("one", SCHEMA), s.create_project("two", SCHEMA)
        assert s.page_settings(one.id, "distill") == {}
        s.set_page_settings(one.id, "distill", {"epochs": 7, "lr": 5e-5, "method": "sa"})
        s.set_page_settings(one.id, "distill", {"epochs": 8, "lr": 5e-5, "method": "sa"})
        s.set_page_settings(two.id, "export", {"fmt": "jsonl"})
    with Store(tmp_path / "x.db") as s:
        assert s.page_settings(one.id, "distill") == {"epochs": 8, "lr": 5e-5, "method": "sa"}
        assert s.page_settings(one.id, "export") == {}
        assert s.page_settings(two.id, "export") == {"fmt": "jsonl"}
        s.db.execute("UPDATE project_settings SET value = 'not json' WHERE key = 'page:export'")
        assert s.page_settings(two.id, "export") == {}        # unreadable: the defaults


def test_texts_sent_to_review_wait_in_the_order_sent_until_decided_and_the_version_changes(
        store):
    project = store.create_project("p", SCHEMA)
    store.insert_samples(project.id, [(f"s{i}", f"text {i}", None) for i in range(5)])
    a, b, c, d, _ = [s.id for s in store.samples(project.id)]
    store.record_decision(project.id, d, action="label", label=SCHEMA.names[0], who="x")
    assert store.send_to_review(project.id, [a, b, d]) == [a, b]      # d is decided
    version = store.sent_to_review_version(project.id)
    assert store.send_to_review(project.id, [c, a]) == [c, a]
    assert store.sent_to_review(project.id) == [a, b, c]       # first come, first served
    assert store.sent_to_review_version(project.id) != version
    version = store.sent_to_review_version(project.id)
    store.record_decision(project.id, c, action="skip", who="x")
    assert store.sent_to_review(project.id) == [a, b]
    assert store.sent_to_review_version(project.id) == version       # a decision is no send
