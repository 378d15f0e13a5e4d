"""The whole flow as a new user walks it, in real headless Chromium at 1280x800 against
`streamlit run app.py` (issue 14): create a project, import, search, annotate, review by
keyboard with fixed keys, change an earlier decision from the history, reload, distill,
export. Screenshots of every page go to tests/artifacts/ (not committed)."""
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from apprunner import chromium_page, streamlit_server
from candist_core.schema import load_schema
from candist_core.store import Store
from conftest import DATASETS

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WIDTH, HEIGHT = 1280, 800

# Visible buttons (Streamlit keeps a hidden copy of each for tooltips) whose text element
# is wider than the space it is given: a truncated label.
TRUNCATED = """() => [...document.querySelectorAll('button')]
    .filter(b => b.offsetParent !== null && b.clientWidth > 0)
    .flatMap(b => [b, ...b.querySelectorAll('p, [data-testid="stMarkdownContainer"]')])
    .filter(e => e.scrollWidth > e.clientWidth)
    .map(e => e.innerText)"""
# label -> the key shown on its button, for the Review page's label buttons.
LABEL_KEYS = """() => Object.fromEntries([...document.querySelectorAll(
        '.st-key-label-buttons button')]
    .filter(b => b.offsetParent !== null)
    .map(b => [b.querySelector('p').innerText.split(' · ')[0],
               (b.querySelector('kbd') || {}).innerText || null]))"""
HIGHLIGHTED = """() => [...document.querySelectorAll(
        '.st-key-label-buttons button[kind="primary"]')]
    .filter(b => b.offsetParent !== null)
    .map(b => b.querySelector('p').innerText.split(' · ')[0])"""


def shoot(page, name: str) -> None:
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.evaluate(TRUNCATED) == [], f"truncated button text on the {name} page"


def wait_for(predicate, seconds: float = 30.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def current(db, project: str) -> dict:
    with Store(db) as store:
        return store.current_decisions(store.get_project(project).id)


def text_of(page) -> str:
    return page.locator('[data-testid="stText"]').first.inner_text()


def pick_in_selectbox(page, container, option: str) -> None:
    container.locator("input").first.click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")


def test_the_whole_flow_at_1280_px(tmp_path):
    med = DATASETS / "medical_abstracts"
    db = tmp_path / "flow.db"
    with Store(db) as store:   # an older project, so that "the first one" is not the answer
        store.create_project("aaa-older", load_schema(DATASETS / "trec" / "labels.json"))
    frame = pd.read_csv(med / "test.csv").head(40)
    upload = tmp_path / "abstracts.csv"
    frame.to_csv(upload, index=False)
    words = pd.Series(re.findall(r"[a-z]{9,}", " ".join(frame["text"]).lower())).value_counts()
    rare = next(w for w in words[words == 1].index
                if sum(w in t.lower() for t in frame["text"]) == 1)
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(db) as url, chromium_page() as page:
        page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
        # Home: create a project; it is selected at once and kept in the URL.
        page.goto(url)
        page.get_by_text("New project").click()
        page.get_by_label("Project name", exact=True).fill("med")
        page.get_by_label("Project name", exact=True).press("Enter")
        page.locator('input[type="file"]').set_input_files(str(med / "labels.json"))
        page.get_by_role("button", name="Create project").click()
        page.get_by_text("Created project 'med'").wait_for(timeout=30_000)
        page.get_by_text("Project: med").wait_for(timeout=30_000)
        page.wait_for_function("() => location.search.includes('project=med')")
        shoot(page, "home")

        # Data: import, the count refreshes, search finds a text by a rare word.
        page.goto(f"{url}/data?project=med")
        page.locator('input[type="file"]').set_input_files(str(upload))
        page.get_by_text("40 new row(s) of 40").wait_for(timeout=60_000)
        page.get_by_role("button", name="Import").click()
        page.get_by_text("Imported 40 rows.").wait_for(timeout=60_000)
        page.get_by_text("40 samples in the project.").wait_for(timeout=30_000)
        page.get_by_label("Search the texts", exact=True).fill(rare)
        page.get_by_label("Search the texts", exact=True).press("Enter")
        page.get_by_text("1 of 40 texts match.").wait_for(timeout=30_000)
        shoot(page, "data")

        page.goto(f"{url}/labels?project=med")
        page.get_by_role("button", name="Save labels").wait_for(timeout=30_000)
        shoot(page, "labels")

        page.goto(f"{url}/annotate?project=med")
        page.get_by_role("button", name="Start annotation").click()
        page.get_by_text("Annotation done").wait_for(timeout=300_000)
        page.get_by_text(re.compile(r"Latest teacher run #\d+: offline")).wait_for(
            timeout=30_000)
        shoot(page, "annotate")

        # Review: every label keeps its key on 10 consecutive texts; decide by keyboard.
        page.goto(f"{url}/review?project=med")
        page.get_by_role("button", name="Skip").wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        first_keys = page.evaluate(LABEL_KEYS)
        assert list(first_keys.values()) == ["1", "2", "3", "4", "5"]
        highlights = set()
        for n in range(1, 11):
            assert page.evaluate(LABEL_KEYS) == first_keys
            assert page.evaluate(TRUNCATED) == []
            chosen = page.evaluate(HIGHLIGHTED)
            highlights.add(tuple(chosen))
            before = text_of(page)
            page.locator('[data-testid="stText"]').first.click()
            page.keyboard.press(first_keys[chosen[-1]])
            wait_for(lambda: len(current(db, "med")) >= n)
            page.wait_for_function(
                "b => document.querySelector('[data-testid=\"stText\"]').innerText !== b",
                arg=before, timeout=30_000)
        assert len(highlights) > 1           # the teacher's sets changed, the keys did not
        page.get_by_text("10 decided in the project").first.wait_for(timeout=10_000)
        shoot(page, "review")

        # Change an earlier decision (the third newest) from the history.
        with Store(db) as store:
            project = store.get_project("med")
            earlier = store.recent_decisions(project.id, limit=6)[2]
            names = store.label_schema(project.id).names
            ext_id = store.samples(project.id, ids=[earlier.sample_id])[0].ext_id
        new_label = next(n for n in names if n != earlier.label)
        pick_in_selectbox(page, page.locator(f".st-key-hist-{earlier.id}"), new_label)
        wait_for(lambda: current(db, "med")[earlier.sample_id].label == new_label)

        # A reload keeps the project (it is in the URL), not the first one in the list.
        page.goto(f"{url}/?project=med")
        page.get_by_text("Project: med").wait_for(timeout=30_000)
        page.reload()
        page.get_by_text("Project: med").wait_for(timeout=30_000)

        # Distill: an estimate before starting, named stages while running.
        page.goto(f"{url}/distill?project=med")
        page.get_by_label("Epochs", exact=True).fill("1")
        page.get_by_label("Epochs", exact=True).press("Enter")
        page.get_by_text("Estimate for 40 texts x 1 epoch:").wait_for(timeout=30_000)
        page.get_by_role("button", name="Start distillation").click()
        page.get_by_text(re.compile(r"Now: (preparing|training|predicting|writing)")).wait_for(
            timeout=120_000)
        page.get_by_text("Distillation done").wait_for(timeout=600_000)
        shoot(page, "distill")

        page.goto(f"{url}/predictions?project=med")
        page.get_by_text("Per class").wait_for(timeout=60_000)
        shoot(page, "predictions")

        page.goto(f"{url}/export?project=med")
        button = page.get_by_role("button", name="Download cleaned CSV")
        button.wait_for(timeout=60_000)
        shoot(page, "export")
        with page.expect_download() as download:
            button.click()
        path = tmp_path / "cleaned.csv"
        download.value.save_as(path)
    cleaned = pd.read_csv(path, dtype=str, keep_default_na=False).set_index("id")
    assert len(cleaned) == 40
    assert (cleaned["label_source"] == "human").sum() == 10
    assert cleaned.loc[ext_id, "label"] == new_label
    assert cleaned.loc[ext_id, "label_source"] == "human"


def test_77_labels_candidates_first_and_a_search_over_all(tmp_path):
    from candist_core.encoder import shared_encoder
    from candist_core.importing import ImportOptions, import_csv
    from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
    bank = DATASETS / "banking77"
    db = tmp_path / "b77.db"
    frame = pd.read_csv(bank / "test.csv").sample(n=60, random_state=0)
    frame.to_csv(tmp_path / "b77.csv", index=False)
    with Store(db) as store:
        project = store.create_project("banking", load_schema(bank / "labels.json"))
        import_csv(store, project.id, tmp_path / "b77.csv",
                   options=ImportOptions(gold_col="label"))
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all"))
        names = store.label_schema(project.id).names
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(db) as url, chromium_page() as page:
        page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
        page.goto(f"{url}/review")
        page.get_by_role("button", name="Skip").wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        for n in range(1, 4):
            shown = list(page.evaluate(LABEL_KEYS))
            assert 1 < len(shown) < len(names)
            assert shown == [name for name in names if name in shown]   # stable order
            assert page.evaluate(TRUNCATED) == []
            if n == 1:
                shoot(page, "review-77-labels")
            target = next(name for name in reversed(names) if name not in shown)
            before = text_of(page)
            pick_in_selectbox(page, page.locator('[class*="st-key-search-"]'), target)
            wait_for(lambda: len(current(db, "banking")) >= n)
            decided = max(current(db, "banking").values(), key=lambda d: d.id)
            assert decided.label == target and decided.in_candidates is False
            page.wait_for_function(
                "b => document.querySelector('[data-testid=\"stText\"]').innerText !== b",
                arg=before, timeout=30_000)


AUDIT_KEYS = """() => Object.fromEntries([...document.querySelectorAll(
        '.st-key-audit-buttons button')]
    .filter(b => b.offsetParent !== null)
    .map(b => [b.querySelector('p').innerText,
               (b.querySelector('kbd') || {}).innerText || null]))"""


def test_audit_mode_blind_keyboard_labels_saved_at_once_and_home_estimates(tmp_path):
    """Issue 12: the Review page's Audit mode in real Chromium."""
    from candist_core.encoder import shared_encoder
    from candist_core.importing import import_csv
    from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
    trec = DATASETS / "trec"
    db = tmp_path / "audit.db"
    frame = pd.read_csv(trec / "train.csv", dtype=str).sample(n=120, random_state=4)
    frame[["text"]].to_csv(tmp_path / "t.csv", index=False)    # no gold: only the audit
    gold = dict(zip(frame["text"], frame["label"]))
    with Store(db) as store:
        project = store.create_project("trec", load_schema(trec / "labels.json"))
        import_csv(store, project.id, tmp_path / "t.csv")
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all"))
        names = store.label_schema(project.id).names

    def audited() -> dict:
        with Store(db) as store:
            return store.audit_decisions(store.get_project("trec").id)

    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(db) as url, chromium_page() as page:
        page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
        page.goto(f"{url}/?project=trec")
        page.get_by_text("Quality unknown").wait_for(timeout=60_000)
        page.get_by_text("(Audit mode)").click()            # the Home next step
        page.get_by_role("button", name="Draw 50 random texts").click()
        page.get_by_text("0 of 50 drawn texts audited").wait_for(timeout=90_000)
        page.wait_for_timeout(500)
        keys = page.evaluate(AUDIT_KEYS)
        assert list(keys) == names and list(keys.values()) == ["1", "2", "3", "4", "5", "6"]
        assert page.locator('.st-key-audit-buttons button[kind="primary"]').count() == 0
        shoot(page, "review-audit")
        for n in range(1, 13):
            text = text_of(page)
            page.locator('[data-testid="stText"]').first.click()
            page.keyboard.press(keys[gold[text]])
            wait_for(lambda: len(audited()) >= n, 90)    # saved at once
            page.wait_for_function(
                "b => document.querySelector('[data-testid=\"stText\"]').innerText !== b",
                arg=text, timeout=90_000)
        decisions = audited()
        assert len(decisions) == 12 and all(d.audit and d.action == "label"
                                            for d in decisions.values())
        page.goto(f"{url}/?project=trec")
        page.get_by_text(re.compile(r"teacher: top label \d+% right, 95% CI \d+-\d+%, from 12 "
                                    r"audited texts")).wait_for(timeout=60_000)
        shoot(page, "home-with-audit")
