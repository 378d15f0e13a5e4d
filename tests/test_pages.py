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


def page(name: str, project: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if project is not None:
        at.query_params["project"] = project
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
    # The run just made is not introduced as "nothing left to annotate" above its own line.
    assert not any(i.value.startswith("All 200 texts") for i in at.info)
    assert any(c.value.startswith("The run below has just given all 200 texts their candidate "
                                  "labels") for c in at.caption)
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
    # it says where the text went: above, where the recent decisions' reader may not look
    assert "the text is back at the top of this page." in " ".join(t.value for t in at.toast)
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
    assert "x 7 epochs:" in " ".join(i.value for i in at.info)     # the estimate follows
    reloaded = page("distill")                  # a reload: a new session, same project
    assert next(n for n in reloaded.number_input if n.label == "Epochs").value == 7
    assert next(s for s in reloaded.selectbox if s.label == "Method").value == "sa"


def test_distill_settings_go_back_to_the_defaults_on_request(app_db):
    at = page("distill")
    next(n for n in at.number_input if n.label == "Epochs").set_value(10).run()
    extra_epochs(at).set_value(50).run()
    next(b for b in at.button if b.label == "Restore the default settings").click().run()
    assert next(n for n in at.number_input if n.label == "Epochs").value == 4
    assert extra_epochs(at).value == 4
    with Store(app_db) as store:                 # forgotten, not only in this session
        assert store.page_settings(store.get_project("trec").id, "distill").get("epochs") == 4
    assert next(n for n in page("distill").number_input if n.label == "Epochs").value == 4


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
        run = store.latest_teacher_run(project.id)
        held = next(a.candidates for a in store.annotations(run.id)
                    if a.sample_id == first.sample_id)
    # each recent decision shows what the teacher proposed for that text
    assert f"Teacher's candidates: {', '.join(held)}" in [c.value for c in at.caption]
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


def extra_epochs(at):
    return next(n for n in at.number_input
                if n.label == "Extra epochs while the labels still change")


@pytest.mark.slow
def test_distill_one_epoch_then_predictions_and_export(app_db):
    annotated(app_db)
    at = page("distill")
    at.number_input[0].set_value(1)
    extra_epochs(at).set_value(0)              # one epoch, settled or not
    next(b for b in at.button if b.label == "Start distillation").click()
    at.run()
    wait_for_job(at, "Distillation done", seconds=600)
    assert not at.error, [e.value for e in at.error]
    runs = at.dataframe[-1].value
    assert runs.iloc[0]["status"] == "done" and runs.iloc[0]["epochs"] == "1"
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
    assert at.toast[0].value == "Saved 6 labels."
    with Store(app_db) as store:
        assert store.label_schema(store.get_project("trec").id).task == "A new task wording."
    next(b for b in at.button if b.label == "Save labels").click()
    at.run()
    assert at.toast[0].value == "Nothing to save: the labels are as saved."


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


# A tiny project with a teacher and a student written by hand, so every count below is worked
# out from this table: (text, teacher's candidates (first = its label), student's probs over
# LABELS3). Texts 0 and 1 are the only teacher/student disagreements; text 0's student label
# is inside the candidates, text 1's is outside; text 7 is the most spread out (entropy).
LABELS3 = ["billing", "delivery", "refund"]
TAUGHT = [
    ("Charged twice, and the parcel never came.", ["billing", "delivery"], [0.2, 0.7, 0.1]),
    ("My invoice shows a fee I never agreed to.", ["refund"], [0.8, 0.1, 0.1]),
    ("Can I get my money back for the extra fee?", ["billing", "refund"], [0.45, 0.2, 0.35]),
    ("The box came broken, I want to send it back.", ["delivery", "refund"], [0.1, 0.6, 0.3]),
    ("Where is my parcel?", ["delivery"], [0.05, 0.9, 0.05]),
    ("Please refund my order.", ["refund"], [0.05, 0.05, 0.9]),
    ("How do I update my card?", ["billing"], [0.9, 0.05, 0.05]),
    ("Something is wrong with my order.", ["delivery", "billing", "refund"], [0.3, 0.4, 0.3]),
]


@pytest.fixture
def taught_db(tmp_path, monkeypatch):
    import numpy as np

    from candist_core.metrics import entropy
    from candist_core.schema import build_schema
    db = tmp_path / "taught.db"
    with Store(db) as store:
        project = store.create_project("taught", build_schema("Support messages", LABELS3))
        store.insert_samples(project.id, [(f"t{i}", text, None)
                                          for i, (text, _, _) in enumerate(TAUGHT)])
        ids = [s.id for s in store.samples(project.id)]
        teacher = store.create_teacher_run(project.id, teacher="offline", model="m",
                                           strategy="ca_all", params={})
        for sid, (_, cands, _) in zip(ids, TAUGHT):
            store.record_annotation(teacher, sid, candidates=cands, label=cands[0],
                                    confidence=0.5, raw=None)
        store.set_teacher_run_status(teacher, "done")
        student = store.create_student_run(project.id, teacher_run_id=teacher,
                                           method="candist", config={})
        probs = np.array([p for _, _, p in TAUGHT], dtype=np.float32)
        outside = np.array([LABELS3[int(p.argmax())] not in c
                            for p, (_, c, _) in zip(probs, TAUGHT)])
        store.write_predictions(student, ids, probs, LABELS3, entropy=entropy(probs),
                                out_of_candidate=outside, high_confidence=~outside,
                                small_loss=outside)
        store.finish_student_run(student, status="done", best_epoch=1)
        store.set_update_every(project.id, 0)      # no background update during a test
    monkeypatch.setenv("CANDIST_DB", str(db))
    return db


def open_taught(name: str) -> AppTest:
    return page(name, project="taught")


def order_box(at: AppTest):
    return next(s for s in at.selectbox if s.label == "Order by")


def filter_box(at: AppTest):
    return next(s for s in at.selectbox if s.label == "Only samples involving")


def reviewing(at: AppTest) -> bool:
    """Whether a text is up for a decision (its Skip button is there; the history below
    shows texts too)."""
    return any(b.key == "skip" for b in at.button)


def test_a_finished_narrow_order_says_what_is_left_and_goes_back_to_the_default(taught_db):
    at = open_taught("review")
    captions = [c.value for c in at.caption]
    assert ("Chosen order, Student entropy (the default): the texts whose student "
            "probabilities are the most spread out (highest entropy) first.") in captions
    assert any(c.startswith("Default order:") for c in captions)

    order_box(at).set_value("disagreement").run()
    captions = [c.value for c in at.caption]
    assert ("Chosen order, Teacher/student disagreement: only the texts where the teacher's "
            "and the student's top labels differ, the least confident first.") in captions
    assert any(c.startswith("Default order:") for c in captions)     # kept
    for expected, pick in ((TAUGHT[0][0], "delivery"), (TAUGHT[1][0], "billing")):
        assert at.text[0].value == expected
        label_buttons(at)[pick].click()
        at.run()
    assert not reviewing(at)                       # the order is exhausted
    assert [i.value for i in at.info] == [
        "Nothing left to review with this order and filter, but 6 undecided text(s) remain "
        "outside them (3 of them ambiguous: more than one candidate label). The default "
        "order over all labels brings them here."]
    assert at.get("progress")[0].proto.text.startswith("3 of 4 ambiguous texts")

    next(b for b in at.button if b.key == "reset-order").click().run()
    assert order_box(at).value == "entropy"
    assert filter_box(at).value == "(all labels)"
    assert at.text[0].value == TAUGHT[7][0]        # the most spread out text left
    assert not at.info
    label_buttons(at)["delivery"].click()
    at.run()                                       # the default order stays after a decision
    assert order_box(at).value == "entropy" and filter_box(at).value == "(all labels)"
    assert reviewing(at) and not at.info


def test_the_progress_line_counts_decided_one_candidate_texts_the_bar_leaves_out(taught_db):
    at = open_taught("review")
    line = at.get("progress")[0].proto.text
    assert line == ("4 of 4 ambiguous texts (more than one candidate label) still undecided; "
                    "this order also serves texts with one candidate")
    with Store(taught_db) as store:
        project = store.get_project("taught")
        one = next(s.id for s in store.samples(project.id) if s.text == TAUGHT[1][0])
        store.record_decision(project.id, one, action="label", label="refund", who="a")
    at.run()
    # the bar stands still (no ambiguous text decided) and keeps its one line; the line
    # under it says why
    assert at.get("progress")[0].proto.value == 0
    assert at.get("progress")[0].proto.text == line
    assert any(c.value.startswith("1 decided in the project (labels and skips; 1 of them "
                                  "with one candidate, which the bar does not count) · ")
               for c in at.caption)


def test_why_here_says_what_the_default_order_ranks_and_what_the_candidate_set_is(taught_db):
    at = open_taught("review")
    assert at.text[0].value == TAUGHT[7][0]
    why = next(c for c in at.caption if c.value.startswith("Why here"))
    assert why.value == ("Why here: the teacher's candidate set holds 3 of the 3 labels; the "
                         "student's probabilities are among the most spread out of the texts "
                         "left (its top label: delivery, 40%).")
    assert "Candidate set: the labels the teacher finds possible" in why.proto.help

    order_box(at).set_value("out_of_candidate").run()
    assert at.text[0].value == TAUGHT[1][0]
    why = next(c for c in at.caption if c.value.startswith("Why here"))
    assert why.value == ("Why here: the teacher's candidate set holds 1 of the 3 labels; the "
                         "teacher's first choice: refund; the student's top label: billing, "
                         "80%, outside the teacher's candidates.")


def test_the_label_filter_also_says_what_it_keeps_and_a_finished_filter_offers_all_labels(
        taught_db):
    at = open_taught("review")
    filter_box(at).set_value("refund").run()
    assert any(c.value.endswith("Only texts whose candidate set or student label includes "
                                "refund.") for c in at.caption)
    seen = 0
    while reviewing(at):                            # texts 1, 2, 3, 5 and 7 involve refund
        next(b for b in at.button if b.key == "skip").click().run()
        seen += 1
    assert seen == 5
    assert at.info[0].value.startswith("Nothing left to review with this order and filter, "
                                       "but 3 undecided text(s) remain outside them (1 of")
    assert next(b for b in at.button if b.key == "reset-order").label == \
        "Go on with the default order (Student entropy, all labels)"


def test_student_labels_filter_names_say_what_they_select(taught_db):
    at = open_taught("predictions")
    agreement = next(s for s in at.selectbox if s.label == "Agreement")
    assert agreement.format_func("disagrees_with_teacher") == \
        "differs from teacher's first choice"
    assert "it may still be one of the teacher's other candidates" in agreement.help

    agreement.set_value("disagrees_with_teacher").run()
    assert any(c.value.startswith("2 predictions match.") for c in at.caption)
    # text 0's student label (delivery) is one of the teacher's candidates, only not its first
    assert sorted(at.dataframe[0].value["text"]) == sorted([TAUGHT[0][0], TAUGHT[1][0]])
    next(s for s in at.selectbox if s.label == "Agreement").set_value(
        "outside_candidates").run()
    assert at.dataframe[0].value["text"].tolist() == [TAUGHT[1][0]]
    assert any(c.value.startswith("Every text of student run #") and "not this table or the "
               "charts below" in c.value for c in at.caption)
    per_class = at.dataframe[1].value
    assert per_class["predicted"].sum() == len(TAUGHT)        # not the 1 text filtered


def test_the_send_button_waits_above_the_table_disabled_until_a_text_is_ticked(taught_db):
    at = open_taught("predictions")
    send = at.button(key="send-to-review")
    assert send.disabled and send.label == "Send to the review queue"
    assert "Tick texts in the table's 'review' column first" in send.help
    main = [type(e).__name__ for e in at.main]          # page order of the main area
    assert main.index("Button") < main.index("Dataframe")


def test_ticked_texts_are_sent_from_above_the_table_in_a_real_session(taught_db):
    """Ticks in the table are a browser's edit (AppTest cannot make them): a real
    ``streamlit run`` driven over its websocket, as a tab."""
    import json

    from streamlit.proto.WidgetStates_pb2 import WidgetState

    from apprunner import streamlit_server
    from st_session import StreamlitSession
    with streamlit_server(taught_db) as url, StreamlitSession(url) as tab:
        tab.open("predictions", "project=taught")
        table = next(p for kind, p in tab.elements() if kind == "dataframe" and p.id)
        shown = [kind for kind, _ in tab.elements()]
        assert shown.index("button") < shown.index("dataframe")
        assert tab.widget("send-to-review").proto.disabled
        tab.rerun(extra=[WidgetState(id=table.id, string_value=json.dumps(
            {"edited_rows": {"0": {"review": True}, "2": {"review": True}},
             "added_rows": [], "deleted_rows": []}))])
        send = tab.widget("send-to-review")
        assert send.label == "Send 2 to the review queue" and not send.proto.disabled
        tab.click("send-to-review")
        assert tab.toasts() == ["Sent 2 text(s): they come first on the Review page (after "
                                "any sent earlier), for every reviewer, until decided."]
        assert tab.widget("send-to-review").proto.disabled       # a fresh editor, no ticks
        assert any("2 text(s) sent to the review queue are waiting" in c
                   for c in tab.captions())
    with Store(taught_db) as store:
        project = store.get_project("taught")
        # rows 0 and 2 by confidence ascending (the page's default order): texts 7 and 3
        assert {s.ext_id for s in store.samples(project.id,
                                                 ids=store.sent_to_review(project.id))} \
            == {"t7", "t3"}


# ------------------------------------------------------------------ Export and Data pages
def export_page_figure(at: AppTest) -> str:
    """The Export page's line on the file as configured against the gold labels."""
    return next(m.value for m in at.markdown
                if m.value.startswith("**This file's labels vs the gold labels"))


def export_control(at: AppTest, kind: str, label: str):
    return next(w for w in getattr(at, kind) if w.label == label)


def test_export_first_visit_keeps_every_row_and_its_gold_figure_follows_the_settings(app_db):
    from candist_core.exporting import ExportOptions, export_gold_check
    annotated(app_db)
    with Store(app_db) as store:
        project = store.get_project("trec")
        first = store.samples(project.id)[0]
        wrong = next(n for n in store.label_schema(project.id).names if n != first.gold)
        store.record_decision(project.id, first.id, action="label", label=wrong)

        def expected(**options):
            return export_gold_check(store, project.id, options=ExportOptions(**options))
        every, blank = expected(), expected(min_confidence=0.5)
        dropped = expected(min_confidence=0.5, below="drop")
    assert blank.judged < every.judged == 200        # some teacher labels are under 50%

    at = page("export")
    # By default no text is lost: no minimum confidence, and rows under one would be kept.
    assert export_control(at, "slider", "Minimum confidence").value == 0
    rows_below = export_control(at, "radio", "Rows below it")
    assert rows_below.value == "blank" and rows_below.options == ["keep them, label empty",
                                                                   "leave them out"]
    assert any(m.value.startswith("200 rows") for m in at.markdown)
    figure = export_page_figure(at)
    right = every.accuracy
    assert f"{right.value:.1%} right** (95% interval {right.low:.1%}-{right.high:.1%})" \
        in figure and "measured on the 200 exported row(s)" in figure
    # The person's label that differs from gold counts, as a wrong one.
    assert any("1 of them carry a person's label, which counts too (0 agree with the gold "
               "label)" in c.value for c in at.caption)

    export_control(at, "slider", "Minimum confidence").set_value(50).run()
    assert any(m.value.startswith("200 rows") and "Every text is in the file" in m.value
               for m in at.markdown)
    figure = export_page_figure(at)
    assert f"{blank.accuracy.value:.1%} right" in figure
    assert f"measured on the {blank.judged} exported row(s)" in figure
    assert any(f"{200 - blank.judged} row(s) with a gold label have no label at these "
               "settings and are not counted" in c.value for c in at.caption)

    export_control(at, "radio", "Rows below it").set_value("drop").run()
    assert any(m.value.startswith(f"{dropped.rows} rows") and
               f"{200 - dropped.rows} text(s) left out" in m.value for m in at.markdown)
    assert f"measured on the {dropped.judged} exported row(s)" in export_page_figure(at)

    export_control(at, "selectbox", "Label policy").set_value("Human only").run()
    assert "measured on the 1 exported row(s)" in export_page_figure(at)
    assert "0.0% right" in export_page_figure(at)


def test_export_says_the_students_gold_figure_is_measured_on_texts_it_trained_on(app_db):
    annotated(app_db)
    with Store(app_db) as store:
        project = store.get_project("trec")
        run = store.create_student_run(project.id, teacher_run_id=None, method="candist",
                                       config={})
        store.record_student_epoch(run, {"epoch": 1, "gold_accuracy": 0.867,
                                         "human_accuracy": None, "selection_score": 0.9,
                                         "selection_n": 15, "validation": "candidates"})
        store.finish_student_run(run, status="done", best_epoch=1)
    at = page("export")
    student = next(c.value for c in at.caption if c.value.startswith("Quality estimate"))
    assert "86.7% accuracy vs the imported gold labels, measured on every text with a gold " \
           "label, nearly all of which the student trained on" in student
    assert "so it is optimistic" in student
    assert "does not follow the settings above" in student
    export_control(at, "slider", "Minimum confidence").set_value(90).run()
    assert student == next(c.value for c in at.caption if c.value.startswith("Quality"))


def test_export_without_gold_labels_says_its_figure_needs_gold_or_an_audit(tmp_path, trec_dir,
                                                                         monkeypatch):
    db = tmp_path / "nogold.db"
    frame = pd.read_csv(trec_dir / "train.csv").head(30)
    frame[["text"]].to_csv(tmp_path / "texts.csv", index=False)
    with Store(db) as store:
        project = store.create_project("trec", load_schema(trec_dir / "labels.json"))
        import_csv(store, project.id, tmp_path / "texts.csv")
    monkeypatch.setenv("CANDIST_DB", str(db))
    annotated(db)
    at = page("export")
    assert not any(m.value.startswith("**This file's labels") for m in at.markdown)
    needs = next(c.value for c in at.caption if "cannot be measured here yet" in c.value)
    assert "needs gold labels" in needs and "Review page, Audit mode" in needs


def test_export_settings_survive_a_reload(app_db):
    annotated(app_db)
    at = page("export")
    export_control(at, "selectbox", "Label policy").set_value("Human, then teacher").run()
    export_control(at, "slider", "Minimum confidence").set_value(80).run()
    export_control(at, "radio", "Rows below it").set_value("drop").run()
    export_control(at, "radio", "Format").set_value("parquet").run()
    reloaded = page("export")                   # a reload: a new session, same project
    assert export_control(reloaded, "selectbox", "Label policy").value == \
        "Human, then teacher"
    assert export_control(reloaded, "slider", "Minimum confidence").value == 80
    assert export_control(reloaded, "radio", "Rows below it").value == "drop"
    assert export_control(reloaded, "radio", "Format").value == "parquet"


def preview_columns(at: AppTest) -> tuple[list[str], dict[str, int]]:
    """The Export preview's shown columns and their widths in px."""
    import json
    proto = at.dataframe[-1].proto
    config = json.loads(proto.columns)
    return list(proto.column_order), {c: config[c]["width"] for c in proto.column_order}


def test_export_preview_fits_1280_px_with_whole_label_names(tmp_path, monkeypatch):
    from candist_core.demo_project import load_demo
    from candist_core.tables import CHAR_PX, PAD_PX, PAGE_WIDTH
    db = tmp_path / "demo.db"
    with Store(db) as store:
        load_demo(store)
    monkeypatch.setenv("CANDIST_DB", str(db))
    with Store(db) as store:
        project = store.get_project("demo")
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all"))
    at = page("export")
    shown, widths = preview_columns(at)
    # "technical_problem" is long: the gold labels fit whole beside the text, the
    # candidates and the annotators do not, and are a tick away.
    assert shown == ["id", "text", "label", "label_source", "confidence", "gold"]
    assert sum(widths.values()) <= PAGE_WIDTH and widths["text"] >= 220
    whole = len("technical_problem") * CHAR_PX + PAD_PX
    assert widths["label"] >= whole and widths["gold"] >= whole
    assert any("(without its candidates and annotators columns)" in c.value for c in at.caption)
    export_control(at, "toggle", "Show every column of the file").set_value(True).run()
    assert preview_columns(at)[0] == ["id", "text", "label", "label_source", "confidence",
                                      "candidates", "gold", "annotators"]


def test_export_preview_shows_every_column_when_they_all_fit(tmp_path, monkeypatch):
    from candist_core.schema import build_schema
    db = tmp_path / "short.db"
    with Store(db) as store:                         # short ids and label names
        project = store.create_project("reviews", build_schema("Sentiment", ["pos", "neg"]))
        store.insert_samples(project.id, [("r1", "Loved it.", "pos"),
                                          ("r2", "Dull and far too long.", "neg")])
    monkeypatch.setenv("CANDIST_DB", str(db))
    at = page("export")
    shown, widths = preview_columns(at)
    assert shown == ["id", "text", "label", "label_source", "confidence", "candidates",
                     "gold", "annotators"]
    assert sum(widths.values()) <= 800
    assert not [t for t in at.toggle if t.label == "Show every column of the file"]


def test_data_page_label_help_says_the_export_may_leave_the_label_out(app_db):
    import json
    from candist_core.exporting import ExportOptions, export_dicts
    annotated(app_db)
    at = page("data")
    label_filter = next(s for s in at.selectbox if s.label == "Label")
    column = json.loads(at.dataframe[-1].proto.columns)["label"]
    for help_ in (label_filter.help, column["help"]):
        assert help_.startswith("The best label known now: the human label if there is one")
        assert "minimum confidence" in help_
        assert "the export would give" not in help_
    # What the help warns of: a text the table shows with a label gets none at 90%.
    table = at.dataframe[-1].value
    with Store(app_db) as store:
        rows = list(export_dicts(store.export_rows(store.get_project("trec").id),
                                 ExportOptions(min_confidence=0.9)))
    blank = next(r["id"] for r in rows if r["label"] == "")
    assert table.set_index("id").loc[blank, "label"] != ""


# ---------------------------------------------------------------- Distill, Annotate, Labels,
# Agreement and Home after the 1280x800 new-user walk

def recorded_run(db, epochs: list[dict], *, best: int, pause: float = 0.2) -> int:
    """A full distillation of the trec project recorded as the trainer records one."""
    from test_progress import finish_run
    with Store(db) as store:
        return finish_run(store, store.get_project("trec").id, pause=pause, epochs=epochs,
                          best=best)


def estimate_text(at: AppTest) -> str:
    return next(i.value for i in at.info if i.value.startswith("Estimate for"))


def charts_of(at: AppTest) -> list[dict]:
    import json
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


THREE_EPOCHS = [{"epoch": e, "loss": 1.0 / e, "step_losses": [1.2 / e, 0.9 / e],
                 "selection_score": s, "selection_n": 20, "seconds": 1.0}
                for e, s in ((1, 0.7), (2, 0.9), (3, 0.8))]


def test_the_distill_estimate_counts_each_finished_run_in_one_plain_sentence(app_db):
    annotated(app_db)
    at = page("distill")
    assert "rough guess" in estimate_text(at)
    recorded_run(app_db, THREE_EPOCHS, best=2)
    at.run()
    assert "measured on this machine by the one run timed so far." in estimate_text(at)
    recorded_run(app_db, THREE_EPOCHS, best=2, pause=0.05)
    at.run()
    said = estimate_text(at)
    assert "by its 2 latest runs, the newest counting most." in said
    assert "((" not in said and "))" not in said


def test_distill_says_what_to_do_first_when_there_is_nothing_to_learn_from(app_db):
    at = page("distill")
    assert any(w.value.startswith("Nothing to learn from yet") for w in at.warning)
    start = next(b for b in at.button if b.label == "Start distillation")
    assert start.disabled and "annotate the texts first" in start.help
    assert not any(i.value.startswith("Estimate for") for i in at.info)   # no run to time
    annotated(app_db)
    at = page("distill")
    assert not any(w.value.startswith("Nothing to learn from yet") for w in at.warning)
    assert any(i.value.startswith("Estimate for") for i in at.info)
    assert not next(b for b in at.button if b.label == "Start distillation").disabled


def test_the_estimate_says_how_long_an_unsettled_run_may_go_on_and_sa_does_not(app_db):
    annotated(app_db)
    at = page("distill")
    assert extra_epochs(at).value == 4
    assert "If the labels have not settled by then, up to 8 epochs: about " in estimate_text(at)
    next(s for s in at.selectbox if s.label == "Method").set_value("sa").run()
    assert extra_epochs(at).value == 0                   # its own default, kept apart
    assert "settled" not in estimate_text(at)
    extra_epochs(at).set_value(2).run()
    assert "up to 6 epochs" in estimate_text(at)
    next(s for s in at.selectbox if s.label == "Method").set_value("candist").run()
    assert extra_epochs(at).value == 4


def test_the_training_charts_mark_the_kept_epoch_and_give_loss_and_score_own_axes(app_db):
    recorded_run(app_db, THREE_EPOCHS, best=2)
    at = page("distill")
    loss, score = charts_of(at)
    for figure in (loss, score):
        assert [a["text"] for a in figure["layout"]["annotations"]] == ["kept: epoch 2"]
        assert figure["layout"]["shapes"][0]["x0"] == 2
    assert loss["layout"]["title"]["text"] == "Training loss"
    assert loss["layout"]["yaxis"]["title"]["text"] == "loss"
    assert {t["name"] for t in loss["data"]} == {"each step", "epoch mean"}
    assert score["layout"]["title"]["text"] == "Selection score after each epoch"
    assert score["layout"]["yaxis"]["title"]["text"] == "share of held-back texts"
    assert [t["name"] for t in score["data"]] == ["selection score"]
    assert any(m.value.startswith("**Training of student run #") for m in at.markdown)


def test_the_runs_table_says_when_each_run_started_and_how_long_it_took(app_db):
    from datetime import datetime
    recorded_run(app_db, THREE_EPOCHS, best=2, pause=0.3)
    at = page("distill")
    runs = at.dataframe[-1].value
    assert {"started", "took"} <= set(runs.columns)
    started = datetime.strptime(runs.iloc[0]["started"], "%Y-%m-%d %H:%M")
    assert abs((datetime.now() - started).total_seconds()) < 600     # this server's clock
    assert runs.iloc[0]["took"] == "0 s"


def test_the_runs_table_names_the_method_and_checks_the_kept_epoch(app_db):
    epochs = [dict(e, validation="candidates") for e in THREE_EPOCHS]
    recorded_run(app_db, epochs, best=2)
    at = page("distill")
    runs = at.dataframe[-1].value
    assert runs.iloc[0]["method"] == "CanDist"
    # epoch 2 scored 0.9 on 20 held-back texts: 18 of 20, Wilson 69.9-97.2 %
    assert runs.iloc[0]["selection score"] == "90% (70-97%) · 20 held-back texts"


@pytest.mark.slow
def test_during_a_run_start_is_disabled_in_place_and_after_it_the_page_counts_it(app_db):
    annotated(app_db)
    at = page("distill")
    next(n for n in at.number_input if n.label == "Epochs").set_value(1)
    extra_epochs(at).set_value(0).run()
    before = estimate_text(at)
    assert "rough guess" in before
    next(b for b in at.button if b.label == "Start distillation").click()
    at.run()
    start = next(b for b in at.button if b.label == "Start distillation")
    assert start.disabled
    assert start.help.startswith("A distillation is running") and "Cancel" in start.help
    assert estimate_text(at) == before        # still there: nothing below it moves
    wait_for_job(at, "Distillation done", seconds=600)
    assert not next(b for b in at.button if b.label == "Start distillation").disabled
    assert "measured on this machine by the one run timed so far" in estimate_text(at)
    loss = charts_of(at)[0]
    assert [a["text"] for a in loss["layout"]["annotations"]] == ["kept: epoch 1"]


def test_annotate_says_what_is_already_annotated_and_does_not_pretend_to_run(app_db):
    with Store(app_db) as store:
        project = store.get_project("trec")
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_add"), limit=50)
    at = page("annotate")                       # CA_add, the page's default
    plan = next(c.value for c in at.caption if c.value.startswith("Plan:"))
    assert plan.startswith("Plan: 150 samples, ranked on this machine")
    assert "50 of the first 200 texts already have candidate labels from this teacher" in plan
    annotated(app_db, "ca_add")
    at.run()
    said = next(i.value for i in at.info if i.value.startswith("All 200 texts"))
    assert "already have candidate labels from this teacher with these settings" in said
    assert "nothing left to annotate" in said and "choose another strategy" in said
    start = next(b for b in at.button if b.label == "Start annotation")
    assert start.disabled and "Nothing left to annotate" in start.help
    assert not any(c.value.startswith("Plan:") for c in at.caption)
    at.selectbox[0].set_value("ca_all").run()       # other settings: a new run to make
    assert any(c.value.startswith("Plan: 200 samples, ranked") for c in at.caption)
    assert not next(b for b in at.button if b.label == "Start annotation").disabled
    coverage = next(m for m in at.metric if m.label == "Coverage (1-α)")
    assert "larger sets miss fewer true labels" in coverage.help


def test_labels_wrap_their_descriptions_and_explain_the_review_keys(app_db):
    import json
    from candist_core.records import Label, LabelSchema
    from candist_core.tables import WRAP_ROW_PX
    with Store(app_db) as store:
        project = store.get_project("trec")
        schema = store.label_schema(project.id)
        first = Label(schema.labels[0].name, "Questions about a number: how many, how much, "
                                             "which year, what size, how far or how long ago.")
        store.replace_labels(project.id, LabelSchema(schema.task,
                                                     (first,) + schema.labels[1:]))
    at = page("labels")
    editor = at.dataframe[0]
    assert editor.proto.row_height == WRAP_ROW_PX          # tall enough to wrap
    columns = json.loads(editor.proto.columns)
    assert columns["description"]["width"] > columns["name"]["width"]
    keys = next(c.value for c in at.caption if c.value.startswith("Review keys"))
    assert "33 keys can be given to labels: the digits 1-9, then the letters a-z except " \
           "s and u" in keys
    assert "0 for none of these, s for skip and u for undo" in keys
    assert "keys available" not in keys


def test_home_and_agreement_explain_sign_in_without_sending_people_to_the_readme(app_db):
    home = page("home")
    agreement = page("agreement")
    shown = [e.value for at in (home, agreement)
             for e in (*at.caption, *at.info, *at.markdown, *at.warning)]
    assert not any("README" in text for text in shown)
    assert any("the Team section of the Home page says how" in i.value
               for i in agreement.info)
    assert any("an `[auth]` section of `.streamlit/secrets.toml`" in c.value
               for c in home.caption)
