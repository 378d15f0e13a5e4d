"""`make run`'s promise: the server starts on the default database with the demo project."""
import urllib.request

import pytest

from apprunner import chromium_page, streamlit_server


@pytest.mark.slow
@pytest.mark.browser
def test_the_app_serves_the_demo_project_on_first_start(tmp_path):
    db = tmp_path / "candist.db"
    with streamlit_server(db) as url:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert b"<html" in response.read().lower()
        with chromium_page() as page:
            page.goto(url)
            page.get_by_text("Project: demo").wait_for(timeout=60_000)
            samples = page.locator('[data-testid="stMetric"]', has_text="Samples")
            samples.get_by_text("150").wait_for(timeout=30_000)
    assert db.exists()


@pytest.mark.slow
def test_make_run_serves_the_app_on_a_fresh_database(tmp_path):
    """The README's `make run`, as a user types it (the virtualenv already exists here)."""
    import os
    import signal
    import subprocess

    from apprunner import ROOT, free_port, wait_until_answers
    port = free_port()
    db = tmp_path / "fresh.db"
    env = {**os.environ, "STREAMLIT_SERVER_HEADLESS": "true"}
    log = tmp_path / "make-run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", "run", f"DB={db}", f"PORT={port}"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/_stcore/health", proc, log,
                           timeout=300, what="make run", expect=b"ok")
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_text("Project: demo").wait_for(timeout=60_000)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert db.exists()
