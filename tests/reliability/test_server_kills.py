"""SIGKILL of the Streamlit server (the app a person is using in a real Chromium) in the
middle of review decisions, an LLM annotation and a distillation: after a restart every
decision the page confirmed and every reply received is in SQLite, no reply is bought
again, and the interrupted student run is shown as failed, never half-written."""
import re
import signal

import pytest

from apprunner import chromium_page, start_streamlit, stop
from candist_core.store import Store
from llama_server import CountingProxy, llama_server
from reliability.pipeline import (decided_texts, done_count, files_containing,
                                  saved_sample_texts, texts_asked, trec_db, wait_until)

pytestmark = [pytest.mark.slow, pytest.mark.browser]
UI_KEY = "sk-typed-in-the-browser-RECOGNISABLE-42"


def kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def check_integrity(db) -> None:
    with Store(db) as store:
        assert store.integrity_check() == "ok"


def decided(n: int):
    """The Review page's count of decisions in the project, exactly ``n``."""
    return re.compile(rf"^{n} decided in the project")


def ready_for_keys(page):
    """The review page has rendered its buttons (so its shortcuts are bound) and is idle."""
    page.get_by_role("button", name="Skip").wait_for(timeout=60_000)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')",
                           timeout=60_000)
    page.locator('[data-testid="stText"]').first.click()


def test_decisions_the_page_confirmed_survive_a_killed_server(tmp_path, trec_dir, tally):
    db = trec_db(tmp_path, trec_dir, rows=40, annotate=True)
    confirmed = []
    proc, url = start_streamlit(db)
    try:
        with chromium_page() as page:
            page.goto(f"{url}/review")
            shown = page.locator('[data-testid="stText"]').first
            ready_for_keys(page)
            for n in range(1, 9):
                text = shown.inner_text()
                page.keyboard.press("1")
                page.get_by_text(decided(n)).wait_for(timeout=30_000)
                confirmed.append(text)
            for _ in range(6):          # a burst, the last keys still in flight ...
                page.keyboard.press("1")
            kill(proc)                  # ... when the server dies
    finally:
        stop(proc)
    check_integrity(db)
    lost = set(confirmed) - decided_texts(db)
    tally("kill", "Streamlit server during review decisions", lost_decisions=len(lost))
    assert not lost
    saved = len(decided_texts(db))
    assert saved >= 8

    proc, url = start_streamlit(db)     # the restarted app shows them and goes on
    try:
        with chromium_page() as page:
            page.goto(f"{url}/review")
            page.get_by_text(decided(saved)).wait_for(timeout=60_000)
            ready_for_keys(page)
            page.keyboard.press("1")
            page.get_by_text(decided(saved + 1)).wait_for(timeout=30_000)
    finally:
        stop(proc)


def start_llm_annotation(page, url: str, base_url: str) -> None:
    page.goto(f"{url}/annotate")
    page.get_by_text("OpenAI-compatible LLM").click()
    for label, value in [("Base URL", base_url), ("Model", "smollm2"), ("API key", UI_KEY),
                         ("Shots", "0"), ("Concurrency", "2")]:
        field = page.get_by_label(label)
        field.fill(value)
        field.press("Enter")
        page.wait_for_timeout(300)
    page.get_by_role("button", name="Start annotation").click()


def test_replies_received_before_the_server_died_are_kept_and_not_bought_again(
        tmp_path, trec_dir, tally):
    db = trec_db(tmp_path, trec_dir)
    with llama_server(log_dir=tmp_path) as (llm_url, _):
        proxy = CountingProxy(llm_url)
        proc, url = start_streamlit(db)
        try:
            with chromium_page() as page:
                start_llm_annotation(page, url, proxy.url)
                assert wait_until(lambda: done_count(db) >= 4, seconds=300)
                kill(proc)
            saved = saved_sample_texts(db)
            assert 4 <= len(saved) < 24      # killed in the middle of the run
            asked_before = len(proxy.bodies)
            proc, url = start_streamlit(db)
            with chromium_page() as page:
                start_llm_annotation(page, url, proxy.url)
                page.get_by_text("Annotation done").wait_for(timeout=400_000)
                page.get_by_text(f"{len(saved)} already done").wait_for(timeout=30_000)
        finally:
            stop(proc)
            proxy.close()
    check_integrity(db)
    lost = saved - saved_sample_texts(db)
    tally("kill", "Streamlit server during LLM annotation", lost_replies=len(lost))
    assert not lost and done_count(db) == 24
    assert not texts_asked(proxy.bodies[asked_before:]) & saved
    assert files_containing(tmp_path, UI_KEY) == []   # not in SQLite, WAL or any log


def test_a_distillation_killed_with_the_server_is_shown_failed_and_never_half_written(
        tmp_path, trec_dir, tally):
    db = trec_db(tmp_path, trec_dir, annotate=True)

    def epoch_recorded():
        with Store(db) as store:
            runs = store.student_runs(store.get_project("trec").id)
            return bool(runs and runs[0].epochs)

    proc, url = start_streamlit(db)
    try:
        with chromium_page() as page:
            page.goto(f"{url}/distill")
            epochs = page.get_by_label("Epochs", exact=True)
            epochs.fill("50")
            epochs.press("Enter")
            page.wait_for_timeout(300)
            page.get_by_role("button", name="Start distillation").click()
            assert wait_until(epoch_recorded, seconds=300)
            kill(proc)
        with Store(db) as store:
            run = store.student_runs(store.get_project("trec").id)[0]
            assert store.predictions(run.id) == []
        proc, url = start_streamlit(db)
        with chromium_page() as page:
            page.goto(f"{url}/distill")
            page.get_by_text(f"Run #{run.id} (candist) failed: interrupted").wait_for(
                timeout=60_000)
    finally:
        stop(proc)
    with Store(db) as store:
        assert store.student_run(run.id).status == "failed"
        assert store.predictions(run.id) == []
        assert store.integrity_check() == "ok"
    tally("kill", "Streamlit server during distillation")
