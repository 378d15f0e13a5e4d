"""The continuous student against a real ``streamlit run app.py``, driven over its
websocket as a browser tab (tests/st_session.py): N decisions re-rank the queue by a new
student with no manual distillation, and a server killed while that update trains loses
no decision and keeps the previous student's predictions."""
from __future__ import annotations

import os
import shutil
import signal

import pytest

from apprunner import start_streamlit, stop
from candist_core.distill import INTERRUPTED
from candist_core.review import DEFAULT_SIGNAL, rank_ambiguous
from candist_core.store import Store
from candist_core.workers import worker_alive
from st_session import StreamlitSession
from test_continuous import build_distilled, wait_for

pytestmark = pytest.mark.slow
N = 5


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distilled")
    build_distilled(folder)
    return folder


@pytest.fixture
def db(distilled, tmp_path):
    shutil.copytree(distilled, tmp_path / "copy")
    path = tmp_path / "copy" / "app.db"
    with Store(path) as store:
        store.set_update_every(store.get_project("trec").id, N)
    return path


def decide(page: StreamlitSession) -> str:
    """Label the text on screen with its first label button; returns the text."""
    text = page.texts()[0]
    page.click(next(w.key for w in page.buttons() if w.key and w.key.startswith("label-")))
    return text


def test_n_decisions_in_the_app_rerank_the_queue_by_an_updated_student(db):
    proc, url = start_streamlit(db)
    try:
        with Store(db) as store, StreamlitSession(url) as page:
            project = store.get_project("trec")
            base = store.latest_student_run(project.id).id
            page.open("review")
            for _ in range(N):
                decide(page)
            new = wait_for(lambda: next((r for r in store.student_runs(project.id)
                                         if r.id != base and r.status == "done"), None),
                           what="updated student")
            assert new.config["update_of"] == base
            assert new.config["trigger"] == f"app: after {N} decisions"
            page.rerun()                       # re-ranked; the text on screen stays leased
            assert any(c.startswith("Student up to date") for c in page.captions())
            decide(page)
            signals = store.review_signals(project.id)
            assert signals["student_run"] == new.id
            ranked = signals["sample_id"][rank_ambiguous(signals, signal=DEFAULT_SIGNAL)]
            texts = {s.id: s.text for s in store.samples(project.id)}
            assert page.texts()[0] == texts[int(ranked[0])]   # the new student's first
            assert len(store.current_decisions(project.id)) == N + 1
    finally:
        stop(proc)


def test_a_server_killed_mid_update_loses_no_decision_and_keeps_the_previous_student(
        db, tally):
    """The update's process (a child of the server) is frozen (SIGSTOP) the moment its run
    row is 'running', then the server is SIGKILLed and the child dies with it: a kill at
    that exact point, every time. If the update had finished before it froze, N more
    decisions start another one."""
    proc, url = start_streamlit(db)
    killed = None
    made = 0
    try:
        with Store(db) as store, StreamlitSession(url) as page:
            project = store.get_project("trec")
            page.open("review")
            for _attempt in range(3):
                base = store.latest_student_run(project.id)
                before = [(p.sample_id, p.label, p.probs.tobytes())
                          for p in store.predictions(base.id)]
                for _ in range(N):
                    decide(page)
                    made += 1
                running = wait_for(lambda: next(iter(store.running_student_runs(project.id)),
                                                None), seconds=60, what="running update",
                                   poll=0.005)
                child = int(running.worker.rsplit(":", 1)[1])
                try:
                    os.kill(child, signal.SIGSTOP)
                except ProcessLookupError:
                    pass                                    # finished and gone already
                if store.student_run(running.id).status == "running":
                    killed = running
                    break
                if worker_alive(running.worker):
                    os.kill(child, signal.SIGCONT)
                wait_for(lambda: store.latest_student_run(project.id).id != base.id,
                         what="finished update")
            assert killed is not None, "no update caught running in three tries"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            wait_for(lambda: not worker_alive(killed.worker), seconds=10,
                     what="the update process dying with the server")
            decided = len(store.current_decisions(project.id))
    finally:
        stop(proc)
    with Store(db) as store:
        project = store.get_project("trec")
        tally("kill", "server during a student update", lost_decisions=made - decided)
        assert decided == made                         # every click is in the database
        assert store.integrity_check() == "ok"
        assert killed.config["update_of"] == base.id
        assert store.latest_student_run(project.id).id == base.id
        assert [(p.sample_id, p.label, p.probs.tobytes())
                for p in store.predictions(base.id)] == before
        assert store.predictions(killed.id) == []
    proc, url = start_streamlit(db)                    # the server comes back
    try:
        with StreamlitSession(url) as page:
            page.open("distill")                        # marks the dead run failed, says so
            assert any(INTERRUPTED in a for a in page.alerts())
        with Store(db) as store:
            assert store.student_run(killed.id).status == "failed"
            assert store.latest_student_run(store.get_project("trec").id).id == base.id
    finally:
        stop(proc)


def test_in_chromium_the_review_page_refreshes_itself_when_the_update_is_done(db):
    """No key pressed after the Nth decision: once the update is done the page shows the
    new student's line and counters by itself, and the text being read stays on screen."""
    from apprunner import chromium_page, streamlit_server
    with streamlit_server(db) as url, chromium_page() as page, Store(db) as store:
        project = store.get_project("trec")
        base = store.latest_student_run(project.id).id
        page.goto(f"{url}/review?project=trec")
        page.get_by_role("button", name="Skip").wait_for(timeout=60_000)
        for n in range(N):
            before = page.locator('[data-testid="stText"]').first.inner_text()
            page.locator('[data-testid="stText"]').first.click()
            page.keyboard.press("1")
            wait_for(lambda: len(store.current_decisions(project.id)) >= n + 1)
            page.wait_for_function(
                "b => document.querySelector('[data-testid=\"stText\"]').innerText !== b",
                arg=before, timeout=30_000)
        reading = page.locator('[data-testid="stText"]').first.inner_text()
        new = wait_for(lambda: next((r for r in store.student_runs(project.id)
                                     if r.id != base and r.status == "done"), None),
                       what="updated student")
        sample = next(s.id for s in store.samples(project.id) if s.text == reading)

        def says(run_id: int) -> str:
            probs = dict(zip(store.label_schema(project.id).names,
                             store.prediction(run_id, sample).probs))
            top = max(probs, key=probs.get)
            return ("the student's probabilities are among the most spread out of the texts "
                    f"left (its top label: {top}, {probs[top]:.0%}")

        assert says(base) != says(new.id)       # so the line must change to pass
        page.get_by_text(says(new.id)).wait_for(timeout=30_000)
        page.get_by_text("Student up to date: no new human label since it last "
                         "trained").wait_for(timeout=30_000)
        assert page.locator('[data-testid="stText"]').first.inner_text() == reading
