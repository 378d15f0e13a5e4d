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
