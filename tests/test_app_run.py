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
    import time

    from apprunner import ROOT, free_port
    port = free_port()
    db = tmp_path / "fresh.db"
    env = {**os.environ, "STREAMLIT_SERVER_HEADLESS": "true"}
    proc = subprocess.Popen(["make", "run", f"DB={db}", f"PORT={port}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("make run did not serve the app")
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_text("Project: demo").wait_for(timeout=60_000)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert db.exists()
