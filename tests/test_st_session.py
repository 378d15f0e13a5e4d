"""tests/st_session.py against a real `streamlit run app.py`: a session opened over the
websocket (no browser) reads the Review page, names its reviewer and clicks a label; the
decision is in SQLite under that reviewer's name."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apprunner import streamlit_server
from candist_core.schema import load_schema
from candist_core.store import Store
from st_session import StreamlitSession, user_key

pytestmark = pytest.mark.slow


def review_db(tmp_path: Path, trec_dir: Path, *, rows: int = 40, seed: int = 0,
              name: str = "team.db") -> Path:
    """A project 'trec' of the first ``rows`` TREC test questions (unique texts, ids
    ``q<i>``) with a finished teacher run of synthetic candidate sets (no model), so its
    Review page has a queue."""
    db = tmp_path / name
    frame = pd.read_csv(trec_dir / "test.csv").head(rows)
    rng = np.random.default_rng(seed)
    with Store(db) as store:
        schema = load_schema(trec_dir / "labels.json")
        project = store.create_project("trec", schema)
        store.insert_samples(project.id, [(f"q{i}", text, None)
                                          for i, text in enumerate(frame["text"])])
        ids = [s.id for s in store.samples(project.id)]
        names = schema.names
        run = store.create_teacher_run(project.id, teacher="offline", model="synthetic",
                                       strategy="ca_all", params={})
        rows_ = []
        for sid, p in zip(ids, rng.dirichlet(np.ones(len(names)) * 0.5, size=len(ids))):
            order = np.argsort(-p)
            keep = [names[j] for j in order if p[j] >= 0.3 * p[order[0]]]
            rows_.append({"sample_id": sid, "candidates": keep, "label": keep[0],
                          "confidence": float(p[order[0]])})
        store.record_annotations(run, rows_)
        store.set_teacher_run_status(run, "done")
    return db


def test_user_keys_are_read_from_widget_ids():
    assert user_key("$$ID-96548aba84925428bd5bfcdf71f3cb8d-label-0") == "label-0"
    assert user_key("$$ID-3f99d1a67fa7c54106a3b8c0a5aca124-None") is None
    assert user_key("plain") is None


def test_a_websocket_session_reviews_under_its_reviewer_name(tmp_path, trec_dir):
    db = review_db(tmp_path, trec_dir, rows=12)
    with Store(db) as store:
        project = store.get_project("trec")
        by_text = {s.text: s.id for s in store.samples(project.id)}
        labels = store.label_schema(project.id).names
    with streamlit_server(db) as url, StreamlitSession(url) as page:
        page.open("review")
        first = page.texts()[0]
        page.reload()                                    # a reload resumes the leased text
        assert page.texts()[0] == first
        assert page.current_page() == "review"
        assert "project=trec" in page.query_string
        assert page.value("Reviewer") == "reviewer"
        page.set_text("Reviewer", "ana")
        assert page.value("Reviewer") == "ana"
        shown = page.texts()[0]
        assert shown == first      # renamed: the text held as "reviewer" went back, to ana
        button = page.widget("label-2")
        assert button.label.startswith(labels[2])
        took = page.click("label-2")
        assert 0 < took < 60
        assert page.toasts() == [f"Saved: {labels[2]}."]
        assert any(c.startswith("1 decided in the project") for c in page.captions())
        assert page.texts()[0] != shown                  # the next text is on screen
        with Store(db) as store:
            decided = store.current_decisions(store.get_project("trec").id)
        assert {sid: (d.who, d.label, d.action) for sid, d in decided.items()} == {
            by_text[shown]: ("ana", labels[2], "label")}

        page.click("Skip")                               # a button by its label
        with Store(db) as store:
            assert len(store.current_decisions(store.get_project("trec").id)) == 2
        with pytest.raises(KeyError):
            page.click("no such button")

        other = StreamlitSession(url)                    # a second tab: its own session
        try:
            other.open("review")
            assert other.value("Reviewer") == "reviewer"
            # "reviewer" holds nothing any more (released on the rename): a fresh text,
            # never ana's
            assert other.texts()[0] not in (first, page.texts()[0])
            other.open("")                               # the navigation's Home page
            assert other.current_page() == ""
        finally:
            other.close()


def test_a_history_row_that_scrolled_off_does_not_decide_again(tmp_path, trec_dir):
    """A history selectbox whose row scrolled off keeps its on_change callback on the
    server (Streamlit never drops widget metadata) but loses its value; a browser that
    sends its last state for it (a key pressed before the run that dropped the row has
    finished) fires change() once more, which must not record the decision again."""
    db = review_db(tmp_path, trec_dir, rows=20)
    with streamlit_server(db) as url, StreamlitSession(url) as page:
        page.open("review")
        page.click("label-1")
        held = page.state("hist-1")          # what the browser holds for the first row
        for _ in range(6):                   # six more: the first row leaves the history
            page.click("label-2")
        assert "hist-1" not in {w.key for w in page.widgets()}
        page.click("label-3", extra=[held])  # the keypress that raced the run's end
    with Store(db) as store:
        log = store.decision_log(store.get_project("trec").id)
    assert len(log) == 8, [(d.sample_id, d.label) for d in reversed(log)]
