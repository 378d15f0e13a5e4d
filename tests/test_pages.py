"""Every page, headless with Streamlit's AppTest, against a real SQLite file holding a
real TREC slice: what the page shows after each step of the workflow."""
import re
import time

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from candist_core.encoder import shared_encoder
from candist_core.importing import ImportOptions, import_csv
from candist_core.review_queue import review_queue, send_to_review
from candist_core.schema import load_schema
from candist_core.store import Store
from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
from conftest import ROOT

TIMEOUT = 120


@pytest.fixture
def app_db(tmp_path, trec_dir, monkeypatch):
    db = tmp_path / "app.db"
    frame = pd.read_csv(trec_dir / "train.csv").sample(n=200, random_state=1)
    frame.to_csv(tmp_path / "slice.csv", index=False)
    with Store(db) as store:
        project = store.create_project("trec", load_schema(trec_dir / "labels.json"))
        import_csv(store, project.id, tmp_path / "slice.csv",
                   options=ImportOptions(gold_col="label"))
    monkeypatch.setenv("CANDIST_DB", str(db))
    return db


def annotated(db, strategy="ca_all"):
    with Store(db) as store:
        project = store.get_project("trec")
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy=strategy))
    return db


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    if name != "home":
        at.switch_page(f"views/{name}.py")
        at.run()
    assert not at.exception, at.exception
    return at


def wait_for_job(at: AppTest, text: str, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        at.run()
        if any(text in s.value for s in at.success) or at.error:
            return
        time.sleep(0.5)
    raise AssertionError(f"no '{text}' within {seconds} s")


def metric(at: AppTest, label: str):
    return next(m.value for m in at.metric if m.label == label)


def test_home_shows_the_status_strip_and_next_step(app_db):
    at = page("home")
    assert at.subheader[0].value == "Project: trec"
    assert metric(at, "Samples") == "200"
    assert metric(at, "With gold label") == "200"
    assert "annotate the texts" in at.info[0].value


def test_annotate_runs_the_offline_teacher_and_charts_the_sets(app_db):
    at = page("annotate")
    assert "Plan: 200 samples, ranked on this machine" in at.caption[0].value
    assert "no requests, no cost" in at.caption[0].value
    at.selectbox[0].set_value("ca_all")
    next(b for b in at.button if b.label == "Start annotation").click()
    at.run()
    wait_for_job(at, "Annotation done")
    assert not at.error
    assert any(re.fullmatch(r"Latest teacher run #\d+: offline / .+", s.value)
               for s in at.subheader)
    assert metric(at, "Annotated") == "200"
    assert metric(at, "Coverage (1-α)").endswith("%")
    assert any("Measured on the 200 texts with a gold label. For scale: guessing one of the 6 "
               "labels at random is right 17% of the time" in c.value for c in at.caption)
    with Store(app_db) as store:
        assert store.status_counts(store.get_project("trec").id)["annotated"] == 200


def label_buttons(at: AppTest) -> dict[str, object]:
    """label -> its button on the Review page."""
    return {b.label.split(" · ")[0]: b for b in at.button
            if b.key and b.key.startswith("label-")}


def candidates_shown(at: AppTest) -> set[str]:
    return {name for name, b in label_buttons(at).items() if b.proto.type == "primary"}


def test_review_saves_each_decision_at_once_and_undo_restores(app_db):
    annotated(app_db)
    at = page("review")
    first_text = at.text[0].value
    candidates = sorted(candidates_shown(at))
    assert len(candidates) >= 2
    chosen = candidates[1]
    label_buttons(at)[chosen].click()
    at.run()
    with Store(app_db) as store:
        project = store.get_project("trec")
        decisions = store.current_decisions(project.id)
        assert [d.label for d in decisions.values()] == [chosen]
        assert list(decisions.values())[0].in_candidates is True
    assert at.text[0].value != first_text          # the next sample is shown at once
    next(b for b in at.button if b.key == "skip").click()
    at.run()
    next(b for b in at.button if b.key == "undo").click()
    at.run()
    with Store(app_db) as store:
        decisions = store.current_decisions(store.get_project("trec").id)
        assert [d.action for d in decisions.values()] == ["label"]


def test_review_buttons_keep_their_place_and_key_on_every_text(app_db):
    annotated(app_db, "ca_add")
    at = page("review")
    with Store(app_db) as store:
        names = store.label_schema(store.get_project("trec").id).names
    seen_sets = set()
    for _ in range(10):
        buttons = label_buttons(at)
        assert list(buttons) == names                       # every label, schema order
        assert [b.proto.shortcut for b in buttons.values()] == \
            [str(n) for n in range(1, len(names) + 1)]      # 1..6, fixed
        seen_sets.add(frozenset(candidates_shown(at)))
        next(b for b in at.button if b.key == "skip").click()
        at.run()
    assert len(seen_sets) > 1                               # the highlight moved, not the keys


def test_a_label_outside_the_candidates_is_recorded_as_such(app_db):
    annotated(app_db, "ca_add")
    at = page("review")
    for _ in range(30):  # skip the samples whose set already holds every label
        candidates = candidates_shown(at)
        if len(candidates) < 6:
            break
        next(b for b in at.button if b.key == "skip").click()
        at.run()
    outside = next(name for name in label_buttons(at) if name not in candidates)
    label_buttons(at)[outside].click()
    at.run()
    with Store(app_db) as store:
        decision = list(store.current_decisions(store.get_project("trec").id).values())[0]
    assert decision.label == outside and decision.in_candidates is False


def test_distill_settings_survive_a_visit_to_another_page(app_db):
    annotated(app_db)
    at = page("distill")
    next(n for n in at.number_input if n.label == "Epochs").set_value(7).run()
    next(s for s in at.selectbox if s.label == "Method").set_value("sa").run()
    at.switch_page("views/home.py").run()
    at.switch_page("views/distill.py").run()
    assert not at.exception, at.exception
    assert next(n for n in at.number_input if n.label == "Epochs").value == 7
    assert next(s for s in at.selectbox if s.label == "Method").value == "sa"
    assert "x 7 epoch(s)" in " ".join(i.value for i in at.info)     # the estimate follows
    reloaded = page("distill")                  # a reload: a new session, same project
    assert next(n for n in reloaded.number_input if n.label == "Epochs").value == 7
    assert next(s for s in reloaded.selectbox if s.label == "Method").value == "sa"


def test_a_kept_setting_the_page_no_longer_accepts_gives_way_to_the_default(app_db):
    annotated(app_db)
    with Store(app_db) as store:      # as an older version, or a hand edit, may leave them
        project = store.get_project("trec")
        store.set_page_settings(project.id, "distill", {"epochs": 500, "method": "gone",
                                                        "lr": "fast", "model": 3})
        store.set_page_settings(project.id, "export", {"policy": "Teacher first",
                                                       "min_confidence_pct": 700, "fmt": "xlsx"})
    at = page("distill")
    assert not at.exception, at.exception
    assert next(n for n in at.number_input if n.label == "Epochs").value == 4
    assert next(s for s in at.selectbox if s.label == "Method").value == "candist"
    at = page("export")
    assert not at.exception, at.exception
    assert next(s for s in at.slider if s.label == "Minimum confidence").value == 0
    assert next(r for r in at.radio if r.label == "Format").value == "csv"


def test_the_teacher_is_retaught_by_updates_unless_turned_off_and_annotate_says_so(app_db):
    from candist_core.human_teacher import teach_for_update
    annotated(app_db)
    at = page("distill")
    box = next(c for c in at.checkbox if c.label.startswith("Re-teach the offline teacher"))
    assert box.value is True and "+7.7 points of exported labels right on TREC" in box.help
    box.uncheck().run()
    with Store(app_db) as store:
        project = store.get_project("trec")
        assert store.teach_on_update(project.id) is False
        first = store.samples(project.id)[0]
        store.record_decisions(project.id, {first.id: first.gold})
        teach_for_update(store, project.id)
    at = page("annotate")
    said = " ".join(c.value for c in at.caption)
    # One label cannot outvote the descriptions yet (weight 0): the caption says nothing
    # changed rather than leave people looking for a difference.
    assert "Human-taught, by a continuous update of the student" in said
    assert "the votes of 1 human-labelled text did not yet predict" in said


def test_review_history_changes_and_undoes_an_earlier_decision(app_db):
    annotated(app_db)
    at = page("review")
    for _ in range(3):
        sorted(label_buttons(at).values(), key=lambda b: b.key)[0].click()
        at.run()
    with Store(app_db) as store:
        project = store.get_project("trec")
        first = min(store.current_decisions(project.id).values(), key=lambda d: d.id)
    history = at.selectbox(key=f"hist-{first.id}")
    other = next(n for n in history.options if n != first.label)
    history.set_value(other).run()
    with Store(app_db) as store:
        now = store.current_decisions(project.id)[first.sample_id]
        assert now.label == other and now.id != first.id
        assert len(store.current_decisions(project.id)) == 3
    next(b for b in at.button if b.key == f"undo-{now.id}").click()
    at.run()
    said = " ".join(t.value for t in at.toast)
    assert f"Undone your {other!r}" in said and f"{first.label!r}, stands again" in said
    with Store(app_db) as store:
        # undoing the change brings the earlier label back; the log keeps all three steps
        assert store.current_decisions(project.id)[first.sample_id].label == first.label
        steps = [d for d in store.decision_log(project.id) if d.sample_id == first.sample_id]
        assert [d.action for d in steps] == ["undo", "label", "label"]

    # ... and a label can be changed into a skip there (the text leaves the export's
    # human labels; the selectbox then shows the skip)
    history = at.selectbox(key=f"hist-{first.id}")
    assert history.options[-1] == "(skip)"
    history.set_value("(skip)").run()
    with Store(app_db) as store:
        skipped = store.current_decisions(project.id)[first.sample_id]
        assert skipped.action == "skip" and skipped.who == first.who
    assert at.selectbox(key=f"hist-{skipped.id}").value == "(skip)"


def test_review_with_many_labels_shows_the_candidates_and_a_search(tmp_path, monkeypatch):
    from conftest import DATASETS
    db = tmp_path / "b77.db"
    frame = pd.read_csv(DATASETS / "banking77" / "test.csv").head(40)
    frame.to_csv(tmp_path / "b77.csv", index=False)
    with Store(db) as store:
        project = store.create_project("banking", load_schema(DATASETS / "banking77" /
                                                              "labels.json"))
        import_csv(store, project.id, tmp_path / "b77.csv", options=ImportOptions(
            gold_col="label"))
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all"))
        names = store.label_schema(project.id).names
    monkeypatch.setenv("CANDIST_DB", str(db))
    at = page("review")
    buttons = label_buttons(at)
    assert 1 < len(buttons) < len(names)
    assert list(buttons) == [n for n in names if n in buttons]     # schema order
    search = next(s for s in at.selectbox if s.key and s.key.startswith("search-"))
    assert search.options == names
    search.set_value(names[-1]).run()
    with Store(db) as store:
        decision = list(store.current_decisions(store.get_project("banking").id).values())[0]
    assert decision.label == names[-1]


def test_review_text_is_plain_text_never_html(app_db):
    hostile = "<script>alert(1)</script> **bold** <img src=x onerror=alert(2)>"
    with Store(app_db) as store:
        project = store.get_project("trec")
        store.insert_samples(project.id, [("x", hostile, None)])
        hostile_id = store.samples(project.id)[-1].id
    annotated(app_db, "ca_all")
    with Store(app_db) as store:
        send_to_review(store, project.id, [hostile_id], who="reviewer")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/review.py")
    at.run()
    assert not at.exception, at.exception
    assert at.text[0].value == hostile                # shown, verbatim, by st.text
    assert all("<script>" not in m.value and "**bold**" not in m.value for m in at.markdown)


@pytest.mark.slow
def test_distill_one_epoch_then_predictions_and_export(app_db):
    annotated(app_db)
    at = page("distill")
    at.number_input[0].set_value(1)
    next(b for b in at.button if b.label == "Start distillation").click()
    at.run()
    wait_for_job(at, "Distillation done", seconds=600)
    assert not at.error, [e.value for e in at.error]
    runs = at.dataframe[-1].value
    assert runs.iloc[0]["status"] == "done" and runs.iloc[0]["epochs"] == 1
    assert metric(at, "Accuracy vs gold labels").endswith("%")

    at = page("predictions")
    assert any("200 predictions match" in c.value for c in at.caption)
    assert len(at.dataframe) >= 1
    with Store(app_db) as store:
        run = store.latest_student_run(store.get_project("trec").id)
        disagree = store.count_predictions(run.id, agreement="disagrees_with_teacher")
    agreement = next(s for s in at.selectbox if s.label == "Agreement")
    assert agreement.format_func(agreement.value) == "(any)"
    agreement.set_value("disagrees_with_teacher").run()
    assert any(f"{disagree} predictions match" in c.value for c in at.caption)

    at = page("export")
    assert any(m.value.startswith("200 rows - label sources student: 200") for m in at.markdown)
    preview = at.dataframe[-1].value
    assert list(preview.columns) == ["id", "text", "label", "label_source", "confidence",
                                     "candidates", "gold", "annotators"]
    assert any(c.value.startswith("Quality estimate") for c in at.caption)


def test_labels_page_saves_the_task_and_flags_labels_in_use(app_db):
    annotated(app_db)
    at = page("labels")
    assert any("used by annotations" in c.value for c in at.caption)
    at.text_area[0].set_value("A new task wording.")
    next(b for b in at.button if b.label == "Save labels").click()
    at.run()
    assert at.success[0].value == "Saved 6 labels."
    with Store(app_db) as store:
        assert store.label_schema(store.get_project("trec").id).task == "A new task wording."


def test_data_page_counts_and_browses_the_texts(app_db):
    at = page("data")
    assert any("200 samples in the project" in c.value for c in at.caption)
    assert any("200 of 200 texts match" in c.value for c in at.caption)
    assert len(at.dataframe[-1].value) == 50                   # one page
    with Store(app_db) as store:
        sample = store.samples(store.get_project("trec").id)[7]
    word = max(sample.text.split(), key=len).strip("?,.")
    next(t for t in at.text_input if t.label == "Search the texts").set_value(word).run()
    shown = at.dataframe[-1].value
    assert sample.text in shown["text"].tolist()
    assert all(word.lower() in t.lower() for t in shown["text"])


def test_a_new_project_takes_its_labels_typed_one_per_line(app_db):
    at = page("home")
    create = next(b for b in at.button if b.label == "Create project")
    assert create.disabled
    next(t for t in at.text_input if t.label == "Project name").input("reviews")
    next(t for t in at.text_input if t.label == "Task (optional)").input("Film reviews")
    at.text_area[0].input("positive: the reviewer liked it\nnegative: they did not\n")
    at.run()
    create = next(b for b in at.button if b.label == "Create project")
    assert not create.disabled
    create.click()
    at.run()
    assert any("Created project 'reviews'" in s.value for s in at.success)
    with Store(app_db) as store:
        schema = store.label_schema(store.get_project("reviews").id)
    assert schema.task == "Film reviews" and schema.names == ["positive", "negative"]
    assert schema.labels[1].description == "they did not"


def test_home_lists_the_next_step_as_a_link_and_keeps_the_project_in_the_url(app_db):
    at = page("home")
    assert at.query_params["project"] == "trec"
    with Store(app_db) as store:
        store.create_project("second", load_schema(ROOT.parent / "shared" / "datasets" /
                                                   "trec" / "labels.json"))
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    again.query_params["project"] = "second"         # a reload of a shared link
    again.run()
    assert again.subheader[0].value == "Project: second"
    assert "import a file of texts" in again.info[0].value


def test_the_reviewer_name_is_kept_in_the_address_so_a_reload_keeps_it(app_db):
    at = page("review")
    box = next(t for t in at.sidebar.text_input if t.label == "Reviewer")
    assert box.value == "reviewer" and "reviewer" not in at.query_params
    box.input("ana")
    at.run()
    assert at.query_params["reviewer"] == "ana"
    reload = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    reload.query_params.update(project="trec", reviewer="ana")
    reload.run()
    reload.switch_page("views/review.py")
    reload.run()
    assert next(t for t in reload.sidebar.text_input if t.label == "Reviewer").value == "ana"


def test_texts_sent_from_student_labels_come_first_in_this_tab_after_a_reload_and_in_order(
        app_db):
    annotated(app_db, "ca_all")
    at = page("review")
    open_text = at.text[0].value                     # leased to this reviewer
    with Store(app_db) as store:
        project = store.get_project("trec")
        first, second = [s for s in store.samples(project.id) if s.text != open_text][5:7]
        # What "Send 2 to the review queue" on Student labels does.
        assert send_to_review(store, project.id, [first.id, second.id],
                              who="reviewer") == [first.id, second.id]
    at.run()                                          # the same tab
    assert at.text[0].value == first.text
    assert any("sent from the Student labels page" in c.value for c in at.caption)
    reloaded = page("review")                         # a reload: a new session
    assert reloaded.text[0].value == first.text
    with Store(app_db) as store:
        assert [r["sample_id"] for r in review_queue(store, project.id, n=2)] == \
            [first.id, second.id]                     # the `queue` command agrees
    next(iter(label_buttons(reloaded).values())).click()
    reloaded.run()
    assert reloaded.text[0].value == second.text      # then the second one sent
    with Store(app_db) as store:
        assert store.sent_to_review(project.id) == [second.id]


def test_export_settings_survive_a_visit_to_another_page(app_db):
    annotated(app_db)
    at = page("export")
    next(s for s in at.slider if s.label == "Minimum confidence").set_value(25)
    next(r for r in at.radio if r.label == "Format").set_value("jsonl")
    at.run()
    at.switch_page("views/home.py")
    at.run()
    at.switch_page("views/export.py")
    at.run()
    assert next(s for s in at.slider if s.label == "Minimum confidence").value == 25
    assert next(r for r in at.radio if r.label == "Format").value == "jsonl"
