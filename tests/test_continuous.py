"""The continuous student (issue 13): after every N new human labels the student is updated
in the background, the Review queue re-ranks by the new student, and an update killed
halfway loses no decision and leaves the previous predictions in place.

Pure rules first (due, the freshness line, the run list's wording), then the store's
setting and count on a real SQLite file, then a real 200-text TREC student (offline
teacher, one MiniLM epoch) updated through the job registry, the Review and Distill pages
(Streamlit's AppTest) and a process killed mid-update."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from candist_core import continuous
from candist_core.continuous import Freshness, describe, due, run_kind
from candist_core.distill import INTERRUPTED, distill_project
from candist_core.importing import ImportOptions, import_csv
from candist_core.jobs import JobRegistry
from candist_core.review import DEFAULT_SIGNAL, rank_ambiguous
from candist_core.schema import build_schema, load_schema
from candist_core.store import Store
from candist_core.student import StudentConfig
from conftest import ROOT, dataset

TIMEOUT = 120


# ------------------------------------------------------------------ due: pure rules
def test_an_update_is_due_after_every_n_new_labels():
    assert not due(Freshness(every=50, student_run=1, new=49))
    assert due(Freshness(every=50, student_run=1, new=50))
    assert due(Freshness(every=50, student_run=1, new=73))      # missed while training


@pytest.mark.parametrize("fresh", [
    Freshness(every=0, student_run=1, new=500),                 # automatic updates off
    Freshness(every=50, student_run=None, new=500),             # nothing to update yet
    Freshness(every=50, student_run=1, new=500, updating=50),   # one runs already
    Freshness(every=50, student_run=1, new=500, distilling=True),
], ids=["off", "no student", "updating", "distilling"])
def test_no_update_is_due_when_off_without_student_or_while_one_trains(fresh):
    assert not due(fresh)


def test_after_a_failed_update_the_next_try_waits_for_n_more_labels():
    failed = Freshness(every=50, student_run=1, new=60, failed="boom", failed_at=50)
    assert not due(failed)
    assert due(Freshness(every=50, student_run=1, new=100, failed="boom", failed_at=50))


def test_an_update_is_due_once_every_ambiguous_text_is_decided_before_n_labels():
    # A 20-text queue never reaches 50 labels: its labels are learned when it is done.
    assert due(Freshness(every=50, student_run=1, new=20), ambiguous_left=0)
    assert not due(Freshness(every=50, student_run=1, new=20), ambiguous_left=1)
    assert not due(Freshness(every=50, student_run=1, new=0), ambiguous_left=0)
    assert not due(Freshness(every=0, student_run=1, new=20), ambiguous_left=0)
    # a failed update is not retried on every later label
    assert not due(Freshness(every=50, student_run=1, new=21, failed="boom", failed_at=20),
                   ambiguous_left=0)


def test_the_line_says_a_short_queue_updates_the_student_when_it_is_done():
    fresh = Freshness(every=50, student_run=3, new=12)
    assert describe(fresh, ambiguous_left=8) == (
        "12 new human labels since the student last trained · next update after 38 more, "
        "or once the 8 ambiguous texts left are decided")
    assert describe(fresh, ambiguous_left=1).endswith("or once the 1 ambiguous text left "
                                                      "is decided")
    assert describe(fresh, ambiguous_left=100).endswith("next update after 38 more")


# ------------------------------------------------------------------ the line on Review
@pytest.mark.parametrize("fresh, line", [
    (Freshness(every=50), "No student yet: distill one on the Distill page."),
    (Freshness(every=50, distilling=True),
     "No student yet: a full distillation is running on the Distill page."),
    (Freshness(every=50, student_run=3, new=12),
     "12 new human labels since the student last trained · next update after 38 more"),
    (Freshness(every=50, student_run=3, new=1),
     "1 new human label since the student last trained · next update after 49 more"),
    (Freshness(every=50, student_run=3, new=0),
     "Student up to date: no new human label since it last trained · next update after "
     "50 more"),
    (Freshness(every=50, student_run=3, new=50, updating=50),
     "Updating the student with 50 new human labels…"),
    (Freshness(every=0, student_run=3, new=7),
     "7 new human labels since the student last trained · automatic updates are off "
     "(Distill page)"),
    (Freshness(every=50, student_run=3, new=60, failed="no embeddings", failed_at=50),
     "60 new human labels since the student last trained · the last update failed: no "
     "embeddings · next update after 40 more"),
    (Freshness(every=50, student_run=3, new=9, distilling=True),
     "9 new human labels since the student last trained · a full distillation is running"),
    (Freshness(every=50, student_run=3, new=0, taught_teacher=7),
     "Student up to date: no new human label since it last trained · its last update "
     "re-taught the teacher with the human labels (teacher run #7; the Annotate page shows "
     "what it changed) · next update after 50 more"),
])
def test_the_review_page_says_how_fresh_the_student_is(fresh, line):
    assert describe(fresh) == line


def test_the_runs_table_checks_the_kept_epoch_with_its_interval_and_what_it_was_measured_on():
    epochs = [{"epoch": 1, "selection_score": 0.8, "selection_n": 150,
               "validation": "candidates"},
              {"epoch": 2, "selection_score": 137 / 150, "selection_n": 150,
               "validation": "candidates"}]
    # Wilson, 137 of 150: 91.3 % (85.7-94.9 %), worked out by hand.
    assert continuous.kept_check(epochs, 2) == "91% (86-95%) · 150 held-back texts"
    human = [{"epoch": 3, "selection_score": 0.8, "selection_n": 30, "validation": "human"}]
    assert continuous.kept_check(human, 3) == "80% (63-90%) · 30 human labels"
    audit = [{"epoch": 1, "selection_score": 1.0, "selection_n": 20, "validation": "audit"}]
    assert continuous.kept_check(audit, 1) == "100% (84-100%) · 20 audit labels"


def test_a_run_with_nothing_held_back_or_no_kept_epoch_shows_no_check():
    assert continuous.kept_check([{"epoch": 1, "selection_score": 1.0, "selection_n": 0,
                                   "validation": "none"}], 1) == ""
    assert continuous.kept_check([{"epoch": 1, "selection_score": 0.9, "selection_n": 20,
                                   "validation": "candidates"}], None) == ""
    assert continuous.kept_check([], 2) == ""


def test_a_run_that_went_past_its_plan_says_so_and_why():
    planned = [{"epoch": e} for e in (1, 2, 3, 4)]
    assert continuous.extension_text({"epochs": 4}, planned) == ""
    assert continuous.planned_epochs({"epochs": 4}, planned) == "4"
    once = planned[:3] + [{"epoch": 4, "changed": 0.038, "extended": 2}, {"epoch": 5},
                          {"epoch": 6}]
    assert continuous.planned_epochs({"epochs": 4}, once) == "6 (4 planned)"
    assert continuous.extension_text({"epochs": 4}, once) == (
        "It trained 6 epochs, not the 4 planned: epoch 4 still changed 4% of the student's "
        "labels from the epoch before, so the run went on (Extra epochs, under More "
        "settings).")
    twice = once[:5] + [{"epoch": 6, "changed": 0.03, "extended": 2}, {"epoch": 7},
                        {"epoch": 8}]
    assert ", and again after epoch 6, whose extension had found a better epoch (" in \
        continuous.extension_text({"epochs": 4}, twice)


def test_the_run_list_names_updates_as_updates():
    assert run_kind({"method": "candist", "epochs": 3}) == "full distillation"
    assert run_kind({"update_of": 11, "human_labels": 57, "trigger": "app: after 50 decisions"}
                    ) == "update of student run #11 · 57 human labels · after 50 decisions"
    assert run_kind({"update_of": 12, "human_labels": 3, "trigger": "cli"}
                    ) == "update of student run #12 · 3 human labels · from the command line"
    assert run_kind({"update_of": 12, "trigger": "app: on demand"}) == \
        "update of student run #12 · on demand"
    assert run_kind({"update_of": 12, "human_labels": 3, "trigger": "cli",
                     "taught_teacher": {"teacher_run": 5, "seconds": 0.1}}) == \
        "update of student run #12 · 3 human labels · re-taught teacher run #5 · from the command line"


# ------------------------------------------------------------------ the store
@pytest.fixture
def toy(store):
    project = store.create_project("p", build_schema("t", ["a", "b"]))
    store.insert_samples(project.id, [(str(i), f"text {i}", None) for i in range(10)])
    return project, [s.id for s in store.samples(project.id)]


def test_the_setting_defaults_to_50_and_0_turns_automatic_updates_off(store, toy):
    project, _ = toy
    assert store.update_every(project.id) == 50
    store.set_update_every(project.id, 5)
    assert store.update_every(project.id) == 5
    store.set_update_every(project.id, 0)
    assert store.update_every(project.id) == 0
    for bad in (-1, 100_001, 2.5, True, "5"):
        with pytest.raises(ValueError, match="Update the student every 0 to 100000"):
            store.set_update_every(project.id, bad)
    assert store.update_every(project.id) == 0


def test_new_labels_are_current_labels_after_the_run_and_undo_takes_one_back(store, toy):
    project, ids = toy
    store.record_decision(project.id, ids[0], action="label", label="a", who="ana")
    run = store.create_student_run(project.id, teacher_run_id=None, method="candist",
                                   config={})
    since = store.student_run(run).created
    time.sleep(0.01)                                   # created times are milliseconds
    assert store.new_human_labels(project.id, since=since) == 0
    for sid in ids[1:5]:
        store.record_decision(project.id, sid, action="label", label="a", who="ana")
    store.record_decision(project.id, ids[5], action="skip", who="ana")   # teaches nothing
    assert store.new_human_labels(project.id, since=since) == 4
    store.undo_decision(project.id, who="ana")         # the skip
    store.undo_decision(project.id, who="ana")         # ids[4]
    assert store.new_human_labels(project.id, since=since) == 3
    store.record_decision(project.id, ids[1], action="label", label="b", who="ana")
    assert store.new_human_labels(project.id, since=since) == 3       # changed: still one
    store.record_decision(project.id, ids[0], action="label", label="b", who="bo")
    assert store.new_human_labels(project.id, since=since) == 4       # an older text, new label
    assert store.new_human_labels(project.id, since=None) == 4
    assert store.new_human_labels(project.id, since=since, until=since) == 0


def test_without_a_student_nothing_starts_and_the_page_is_told_why(store, toy):
    project, ids = toy
    store.set_update_every(project.id, 1)
    store.record_decision(project.id, ids[0], action="label", label="a")
    registry = JobRegistry()
    assert continuous.update_if_due(store, registry, project.id) is None
    assert registry.get(continuous.update_key(store, project.id)) is None
    fresh = continuous.read_freshness(store, registry, project.id)
    assert describe(fresh) == "No student yet: distill one on the Distill page."
    assert describe(fresh, can_distill=False) == \
        "No student yet: a project owner distills one on the Distill page."
    with pytest.raises(Exception, match="No student yet"):
        continuous.start_update(store, registry, project.id)


# ------------------------------------------------------------------ a real student
def build_distilled(folder: Path, *, rows: int = 200) -> Path:
    """``folder/app.db``: ``rows`` TREC texts, an offline teacher run and one finished
    one-epoch MiniLM student (with its state for updates, no model folder)."""
    from candist_core.encoder import shared_encoder
    from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
    trec = dataset("trec")
    frame = pd.read_csv(trec / "train.csv").sample(n=rows, random_state=1)
    frame.to_csv(folder / "slice.csv", index=False)
    with Store(folder / "app.db") as store:
        project = store.create_project("trec", load_schema(trec / "labels.json"))
        import_csv(store, project.id, folder / "slice.csv",
                   options=ImportOptions(gold_col="label"))
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()), TeacherConfig())
        distill_project(store, project.id, StudentConfig(epochs=1, extra_epochs=0),
                        save_checkpoint=False)
    return folder / "app.db"


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """Built once per module, copied per test (:func:`app_db`)."""
    folder = tmp_path_factory.mktemp("distilled")
    build_distilled(folder)
    return folder


@pytest.fixture
def app_db(distilled, tmp_path, monkeypatch) -> Path:
    """A private copy of the distilled database (and its model state), opened by the app."""
    shutil.copytree(distilled, tmp_path / "copy")
    db = tmp_path / "copy" / "app.db"
    monkeypatch.setenv("CANDIST_DB", str(db))
    return db


def wait_for(condition, seconds: float = TIMEOUT, what: str = "condition", *,
             poll: float = 0.1):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"no {what} within {seconds} s")


@pytest.mark.slow
def test_an_update_starts_in_the_background_at_once_and_only_one_at_a_time(app_db):
    with Store(app_db) as store:
        project = store.get_project("trec")
        base = store.latest_student_run(project.id)
        store.set_update_every(project.id, 5)
        ids = [s.id for s in store.samples(project.id)][:5]
        registry = JobRegistry()
        for sid in ids[:4]:
            store.record_decision(project.id, sid, action="label", label="Human")
            assert continuous.update_if_due(store, registry, project.id) is None
        store.record_decision(project.id, ids[4], action="label", label="Location")
        started = time.perf_counter()
        job = continuous.update_if_due(store, registry, project.id)
        took = time.perf_counter() - started
        assert job is not None and took < 0.1           # the reviewer does not wait
        assert continuous.update_if_due(store, registry, project.id) is None   # one at a time
        assert describe(continuous.read_freshness(store, registry, project.id)) == \
            "Updating the student with 5 new human labels…"
        wait_for(lambda: not job.running, what="finished update")
        assert job.status == "done", job.error
        run = store.latest_student_run(project.id)
        assert run.id == job.result != base.id
        assert run.config["update_of"] == base.id
        assert run.config["trigger"] == "app: after 5 decisions"
        assert run.config["human_labels"] == 5
        fresh = continuous.read_freshness(store, registry, project.id)
        assert (fresh.student_run, fresh.new, due(fresh)) == (run.id, 0, False)


@pytest.mark.slow
def test_a_failing_update_is_recorded_on_its_job_and_retried_only_n_labels_later(app_db,
                                                                                 tmp_path):
    with Store(app_db) as store:
        project = store.get_project("trec")
        store.set_update_every(project.id, 2)
        pd.DataFrame({"text": ["a text imported after the student", "and another"]}) \
            .to_csv(tmp_path / "late.csv", index=False)
        import_csv(store, project.id, tmp_path / "late.csv")   # no embeddings for these
        ids = [s.id for s in store.samples(project.id)]
        registry = JobRegistry()
        for sid in ids[:2]:
            store.record_decision(project.id, sid, action="label", label="Human")
        job = continuous.update_if_due(store, registry, project.id)
        wait_for(lambda: not job.running, what="finished update")
        assert job.status == "failed"
        assert "imported after the last full distillation" in job.error
        fresh = continuous.read_freshness(store, registry, project.id)
        assert not due(fresh)
        assert "the last update failed: 2 texts were imported" in describe(fresh)
        store.record_decision(project.id, ids[2], action="label", label="Human")
        assert continuous.update_if_due(store, registry, project.id) is None
        store.record_decision(project.id, ids[3], action="label", label="Human")
        retry = continuous.update_if_due(store, registry, project.id)
        assert retry is not None
        wait_for(lambda: not retry.running, what="finished update")
        assert retry.status == "failed"                 # still no embeddings for them


# ------------------------------------------------------------------ the pages
def open_page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(f"views/{name}.py")
    at.run()
    assert not at.exception, at.exception
    return at


def label_button(at: AppTest):
    """The first label button of the text on screen (a teacher candidate if any)."""
    buttons = [b for b in at.button if b.key and b.key.startswith("label-")]
    return next((b for b in buttons if b.proto.type == "primary"), buttons[0])


def freshness_line(at: AppTest) -> str:
    return next(c.value for c in at.caption
                if c.value.startswith(("Student", "Updating", "No student"))
                or " since the student last trained" in c.value)


@pytest.mark.slow
def test_n_decisions_on_the_review_page_rerank_the_queue_by_a_new_student(app_db):
    with Store(app_db) as store:
        project = store.get_project("trec")
        base = store.latest_student_run(project.id).id
        store.set_update_every(project.id, 5)
    at = open_page("review")
    order = next(s for s in at.selectbox if s.label == "Order by")
    assert order.value == DEFAULT_SIGNAL and order.index == 0
    assert {"Likely teacher mistakes (cleanlab)", "Random order"} <= set(order.options)
    assert at.session_state["queue_key"][-1] == base
    shown = []
    for n in range(5):
        shown.append(at.text[0].value)
        label_button(at).click()
        at.run()
        assert not at.exception, at.exception
        if n == 3:
            assert freshness_line(at) == ("4 new human labels since the student last "
                                          "trained · next update after 1 more")
    before = list(at.session_state["queue"]["ids"])
    with Store(app_db) as store:
        new = wait_for(lambda: next((r for r in store.student_runs(project.id)
                                     if r.id != base and r.status == "done"), None),
                       what="updated student")
        decisions = store.current_decisions(project.id)
        assert len(decisions) == 5 and all(d.action == "label" for d in decisions.values())
        assert new.config["update_of"] == base
        assert new.config["trigger"] == "app: after 5 decisions"
        assert new.config["human_labels"] == 5
    at.run()                                            # the next render
    assert not at.exception, at.exception
    assert at.session_state["queue_key"][-1] == new.id
    queue = at.session_state["queue"]
    assert queue["student_run"] == new.id
    with Store(app_db) as store:
        signals = store.review_signals(project.id)
        expected = signals["sample_id"][rank_ambiguous(signals, signal=DEFAULT_SIGNAL)]
    # The 5 texts reviewed in this queue stay in front (the progress bar goes on counting
    # them); every text left is in the new student's order.
    assert set(queue["ids"][:5]) == set(decisions) and queue["ids"][5:] == expected.tolist()
    assert [i for i in before if i not in decisions] != queue["ids"]   # re-ranked
    assert freshness_line(at).startswith("Student up to date: no new human label since it "
                                         "last trained")
    assert at.text[0].value not in shown


@pytest.mark.slow
def test_the_distill_page_sets_n_updates_on_demand_and_lists_updates(app_db):
    at = open_page("distill")
    setting = next(n for n in at.number_input
                   if n.label == "Update the student every N human labels")
    assert setting.value == 50
    setting.set_value(5)
    at.run()
    with Store(app_db) as store:
        project = store.get_project("trec")
        assert store.update_every(project.id) == 5
        base = store.latest_student_run(project.id).id
    now = next(b for b in at.button if b.label == "Update now")
    assert not now.disabled
    now.click()
    at.run()
    with Store(app_db) as store:
        wait_for(lambda: store.latest_student_run(project.id).id != base,
                 what="updated student")
    at.run()
    runs = at.dataframe[-1].value
    assert list(runs["kind"]) == [f"update of student run #{base} · 0 human labels · on demand",
                                  "full distillation"]
    assert runs["run"].iloc[1] == f"#{base}"      # the id the command line names it by
    assert list(runs["status"]) == ["done", "done"]


def test_the_distill_page_says_why_update_now_waits_for_a_first_student(tmp_path,
                                                                         monkeypatch):
    db = tmp_path / "empty.db"
    with Store(db) as store:
        project = store.create_project("p", build_schema("t", ["a", "b"]))
        store.insert_samples(project.id, [("1", "one", None)])
    monkeypatch.setenv("CANDIST_DB", str(db))
    at = open_page("distill")
    now = next(b for b in at.button if b.label == "Update now")
    assert now.disabled
    assert "No student to update yet: start a full distillation above first." in \
        [c.value for c in at.caption]


# ------------------------------------------------------------------ killed mid-update
SLOW_UPDATE = """
import sys
from candist_core.distill import update_student
from candist_core.learning import UpdateConfig
from candist_core.store import Store
store = Store(sys.argv[1])
update_student(store, store.get_project("trec").id, UpdateConfig(steps=1_000_000),
               trigger="cli")
"""


def kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def assert_kept(store, project_id: int, made: list[int], tally, scenario: str) -> None:
    """Every decision reported saved is in the log after the kill, the file is whole."""
    saved = {d.id for d in store.decision_log(project_id, limit=1000)}
    tally("kill", scenario, lost_decisions=len(set(made) - saved))
    assert set(made) <= saved
    assert store.integrity_check() == "ok"


@pytest.mark.slow
def test_an_update_killed_midway_loses_no_decision_and_keeps_the_previous_student(app_db,
                                                                                 tally):
    with Store(app_db) as store:
        project = store.get_project("trec")
        base = store.latest_student_run(project.id)
        before = [(p.sample_id, p.label, p.probs.tobytes())
                  for p in store.predictions(base.id)]
        ids = [s.id for s in store.samples(project.id)]
        proc = subprocess.Popen([sys.executable, "-c", SLOW_UPDATE, str(app_db)], cwd=ROOT)
        try:
            dead = wait_for(lambda: next(iter(store.running_student_runs(project.id)), None),
                            what="running update")
            # a reviewer keeps deciding while the update trains
            made = [store.record_decision(project.id, sid, action="label", label="Human",
                                          who="ana") for sid in ids[:10]]
            assert proc.poll() is None
        finally:
            kill(proc)
        assert_kept(store, project.id, made, tally, "student update")
        assert dead.config["update_of"] == base.id
        assert store.latest_student_run(project.id).id == base.id
        assert store.review_signals(project.id)["student_run"] == base.id
        assert [(p.sample_id, p.label, p.probs.tobytes())
                for p in store.predictions(base.id)] == before
        assert store.predictions(dead.id) == []
        # the next update (the app's own way) marks the dead run failed and learns from
        # every decision
        new = continuous.update_in_child(app_db, project.id, trigger="cli")
        assert store.student_run(dead.id).status == "failed"
        assert store.student_run(dead.id).error == INTERRUPTED
        run = store.student_run(new)
        assert run.status == "done" and run.config["update_of"] == base.id
        assert run.config["human_labels"] == 10


HUNG_TEACH = """
import sys, time
from candist_core.human_teacher import teach_for_update
from candist_core.store import Store
store = Store(sys.argv[1])
teach_for_update(store, store.get_project("trec").id, load_encoder=lambda: time.sleep(1000))
"""


@pytest.mark.slow
def test_an_update_killed_while_reteaching_the_teacher_leaves_the_current_run_whole(
        app_db, tally):
    from candist_core.embedding_cache import CachingEncoder, EmbeddingCache, cache_path
    from candist_core.encoder import shared_encoder
    from candist_core.schema import label_texts
    with Store(app_db) as store:
        project = store.get_project("trec")
        current = store.latest_teacher_run(project.id)
        samples = store.samples(project.id)
        made = [store.record_decision(project.id, s.id, action="label", label=s.gold,
                                      who="ana") for s in samples[:20]]
        # The cache keeps only the labelled texts and the label descriptions (the votes'
        # fit needs no encoder): the run starts, then must load its encoder and hangs.
        path = cache_path(app_db, "trec", current.model)
        path.unlink()
        keep = CachingEncoder.around(shared_encoder(), EmbeddingCache(path))
        keep.encode([s.text for s in samples[:20]]
                    + label_texts(store.label_schema(project.id)))
        keep.save()
        proc = subprocess.Popen([sys.executable, "-c", HUNG_TEACH, str(app_db)], cwd=ROOT)
        try:
            killed = wait_for(lambda: next((r for r in store.teacher_runs(project.id)
                                            if r.id != current.id), None),
                              what="a taught teacher run")
            time.sleep(0.5)
            assert proc.poll() is None
        finally:
            kill(proc)
        assert_kept(store, project.id, made, tally, "teacher re-taught by an update")
        assert store.annotations(killed.id) == []          # written whole or not at all
        assert store.latest_teacher_run(project.id).id == current.id
        # The next update re-teaches (the same decisions: the same run, filled now) and
        # learns from it.
        stages = []
        run = store.student_run(continuous.update_in_child(app_db, project.id, trigger="cli",
                                                           on_stage=stages.append))
        assert run.config["taught_teacher"]["teacher_run"] == killed.id == run.teacher_run_id
        # The page is told each step as the update process starts it.
        assert [s.split(" ")[0] for s in stages] == ["re-teaching", "retraining",
                                                     "calibrating", "writing", "saving"]
        assert len(store.annotations(killed.id)) == len(samples)
        assert store.latest_teacher_run(project.id).id == killed.id


def test_an_update_process_that_died_unreaped_counts_as_dead():
    """Where PID 1 reaps no orphans (this container), an update process that died with
    the server stays a zombie; its run must still be seen as interrupted."""
    import socket
    from candist_core.workers import worker_alive
    parent = subprocess.Popen(["bash", "-c", "sleep 1 & echo $!; wait"],
                              stdout=subprocess.PIPE, text=True)
    orphan = f"{socket.gethostname()}:{int(parent.stdout.readline())}"
    assert worker_alive(orphan)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    wait_for(lambda: not worker_alive(orphan), seconds=10, what="a dead orphan")


def test_the_review_pages_modules_import_no_torch():
    """The Review page's first render at 100,000 texts has a 1 s budget; importing torch and
    transformers alone takes 2-4 s (bench/app_latency.py caught it at 4.7 s)."""
    import subprocess
    import sys
    code = ("import sys; import candist_core.continuous, candist_core.review, "
            "candist_core.keys, candist_core.access, candist_core.review_queue; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_the_distill_page_says_how_an_update_s_confidence_was_calibrated():
    from candist_core.continuous import calibration_text
    assert calibration_text([{"epoch": 3}]) == ""          # a full run: nothing to say
    fitted = calibration_text([{"calibration": {"temperature": 2.4, "matching": 3.1,
                                                "fitted": 2.4, "humans": 60}}])
    assert "checked against 60 of your labels" in fitted
    few = calibration_text([{"calibration": {"temperature": 1.8, "matching": 1.8,
                                             "fitted": None, "humans": 5}}])
    assert "kept at the full distillation's level" in few


@pytest.mark.slow
def test_a_short_queue_updates_the_student_once_its_ambiguous_texts_are_decided(app_db):
    # A walk: the demo's 20 ambiguous texts never reached "next update after 50 more".
    with Store(app_db) as store:
        project = store.get_project("trec")
        base = store.latest_student_run(project.id).id
        assert store.update_every(project.id) == 50
        signals = store.review_signals(project.id)
        ambiguous = [int(i) for i, c in zip(signals["sample_id"], signals["candidates"])
                     if len(c) > 1]
        # Everything but two ambiguous texts is skipped elsewhere: skips teach nothing,
        # so the student has 0 new labels and the queue two texts.
        for sid in signals["sample_id"].tolist():
            if sid not in ambiguous[:2]:
                store.record_decision(project.id, int(sid), action="skip", who="elsewhere")
    at = open_page("review")
    assert freshness_line(at) == ("Student up to date: no new human label since it last "
                                  "trained · next update after 50 more, or once the 2 "
                                  "ambiguous texts left are decided")
    for _ in range(2):
        label_button(at).click()
        at.run()
        assert not at.exception, at.exception
    with Store(app_db) as store:
        new = wait_for(lambda: next((r for r in store.student_runs(project.id)
                                     if r.id != base and r.status == "done"), None),
                       what="updated student")
        assert new.config["trigger"] == continuous.QUEUE_DONE_TRIGGER
        assert new.config["human_labels"] == 2
