"""End to end in a real headless Chromium against `streamlit run app.py`: upload a CSV,
annotate offline, three review decisions with the keyboard, export and read the file."""
import time
from pathlib import Path

import pandas as pd
import pytest

from apprunner import chromium_page, streamlit_server
from candist_core.schema import load_schema
from candist_core.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def decisions(db):
    with Store(db) as store:
        return store.current_decisions(store.get_project("trec").id)


def test_upload_annotate_review_by_keyboard_and_export(tmp_path, trec_dir):
    db = tmp_path / "e2e.db"
    with Store(db) as store:
        store.create_project("trec", load_schema(trec_dir / "labels.json"))
    upload = tmp_path / "questions.csv"
    frame = pd.read_csv(trec_dir / "test.csv").head(60)
    frame.loc[0, "text"] = "<img src=x onerror=\"document.title='pwned'\"> What is HTML ?"
    frame.to_csv(upload, index=False)
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(db) as url, chromium_page() as page:
        page.goto(f"{url}/data")
        page.locator('input[type="file"]').set_input_files(str(upload))
        page.get_by_text("60 new row(s) of 60").wait_for(timeout=60_000)
        page.get_by_role("button", name="Import").click()
        page.get_by_text("Imported 60 rows.").wait_for(timeout=60_000)

        page.goto(f"{url}/annotate")
        page.get_by_role("button", name="Start annotation").click()
        page.get_by_text("Annotation done").wait_for(timeout=180_000)

        page.goto(f"{url}/review")
        page.get_by_role("button", name="Skip").wait_for(timeout=60_000)
        for n in range(1, 4):
            before = page.locator('[data-testid="stText"]').first.inner_text()
            page.locator('[data-testid="stText"]').first.click()
            page.keyboard.press("1")
            deadline = time.time() + 30
            while len(decisions(db)) < n and time.time() < deadline:
                time.sleep(0.2)
            assert len(decisions(db)) == n
            page.wait_for_function(
                "b => document.querySelector('[data-testid=\"stText\"]').innerText !== b",
                arg=before, timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)
        assert page.title() != "pwned"

        page.goto(f"{url}/export")
        button = page.get_by_role("button", name="Download cleaned CSV")
        button.wait_for(timeout=60_000)
        with page.expect_download() as download:
            button.click()
        path = tmp_path / "cleaned.csv"
        download.value.save_as(path)
    cleaned = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(cleaned) == 60
    assert (cleaned["label_source"] == "human").sum() == 3
    assert (cleaned["label_source"] == "teacher").sum() == 57
    human = cleaned[cleaned["label_source"] == "human"]
    saved = {d.label for d in decisions(db).values()}
    assert set(human["label"]) <= saved
    assert cleaned["text"].tolist()[1:] == frame["text"].tolist()[1:]


def test_html_and_script_in_a_text_are_shown_as_text(tmp_path, trec_dir):
    from candist_core.encoder import shared_encoder
    from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
    hostile = ("<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
               " <b>bold</b> What is XSS ?")
    db = tmp_path / "xss.db"
    with Store(db) as store:
        project = store.create_project("trec", load_schema(trec_dir / "labels.json"))
        store.insert_samples(project.id, [("x", hostile, None)])
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all", r_all=0.01))
    with streamlit_server(db) as url, chromium_page() as page:
        page.goto(f"{url}/review")
        shown = page.locator('[data-testid="stText"]').first
        shown.wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        assert shown.inner_text() == hostile
        assert page.evaluate("window.__pwned === undefined")
        assert page.locator("b", has_text="bold").count() == 0
