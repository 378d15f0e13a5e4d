"""Sign-in end to end: `streamlit run app.py` with an ``[auth]`` section pointing at a real
OIDC provider on loopback (oidc-provider-mock: a Flask app whose login form takes the
subject, which it also sends as the ``email`` claim), driven in real headless Chromium.

What reaches the browser is checked on the wire, not only on the screen: every websocket
frame the page receives (Streamlit's protobuf messages, where strings are plain UTF-8) is
searched for the project's sample texts, label names and project name. The owner's own
frames are searched the same way and must contain them, so the check is known to see data
when data is sent.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import pytest

from apprunner import ROOT, chromium, free_port, streamlit_server
from candist_core.schema import load_schema
from candist_core.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

PROJECT = "acme-helpdesk-q7"
LABELS = {"Refund-Wanted-Q7": "The customer asks for their money back.",
          "Parcel-Missing-Q7": "The customer's parcel has not arrived."}
TEXTS = ["Secret-Text-0001: my parcel never came, I want my money back",
         "Secret-Text-0002: where is the box I ordered three weeks ago",
         "Secret-Text-0003: please refund the second charge on my card",
         "Secret-Text-0004: tracking says delivered but nothing is here"]
SECRETS = [PROJECT, *LABELS, *TEXTS]
OWNER, REVIEWER = "owner@example.org", "reviewer@example.org"
TIMEOUT = 60_000


@contextlib.contextmanager
def oidc_provider():
    """oidc-provider-mock on a free 127.0.0.1 port in a thread; yields its base URL. It
    accepts any client id and secret (no registration needed)."""
    import oidc_provider_mock
    import werkzeug.serving
    port = free_port()
    server = werkzeug.serving.make_server("127.0.0.1", port, oidc_provider_mock.app(),
                                          threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def write_secrets(folder: Path, provider: str) -> Path:
    """A secrets.toml with ``[auth]`` for the provider; ``{port}`` is the app's own port."""
    path = folder / "secrets.toml"
    path.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "a-test-cookie-secret-that-is-long-enough"\n'
        'client_id = "candist-tests"\n'
        'client_secret = "not-a-real-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    return path


@pytest.fixture(scope="module")
def annotated_db(tmp_path_factory):
    """A project with distinctive names and texts, annotated so every text is ambiguous."""
    from candist_core.encoder import shared_encoder
    from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
    folder = tmp_path_factory.mktemp("sign-in")
    (folder / "labels.json").write_text(json.dumps(
        {"task": "Support requests", "labels": [{"name": n, "description": d}
                                                for n, d in LABELS.items()]}))
    db = folder / "team.db"
    with Store(db) as store:
        project = store.create_project(PROJECT, load_schema(folder / "labels.json"))
        store.insert_samples(project.id, [(f"t{i}", text, None)
                                          for i, text in enumerate(TEXTS)])
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all", r_all=0.01))
    return db


@pytest.fixture(scope="module")
def signed_app(annotated_db):
    """The app with sign-in configured through a temporary secrets file (the repository's
    .streamlit/ is not touched): yields the app's URL."""
    with oidc_provider() as provider:
        secrets = write_secrets(annotated_db.parent, provider)
        with streamlit_server(annotated_db, extra_args=["--secrets.files", str(secrets)]) as url:
            yield url


class Wire:
    """Everything a page receives on its websockets."""

    def __init__(self, page):
        self.frames: list[bytes] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload) -> None:
        self.frames.append(payload.encode() if isinstance(payload, str) else bytes(payload))

    def leaks(self, strings) -> list[str]:
        blob = b"\n".join(self.frames)
        return [s for s in strings if s.encode() in blob]


def new_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    return page, Wire(page)


def sign_in(page, url: str, email: str) -> None:
    """Through the app's Sign in button and the provider's login form, back to the app."""
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.locator('input[name="sub"]').fill(email, timeout=TIMEOUT)
    page.get_by_role("button", name="Authorize").click()
    signed_in(page, email).wait_for(timeout=TIMEOUT)


def signed_in(page, email: str):
    return page.get_by_test_id("stSidebarUserContent").get_by_text(f"Signed in as {email}")


def settle(page, ms: int = 1500) -> None:
    """Let the script run finish and its last messages arrive."""
    page.wait_for_timeout(ms)


def test_an_unsigned_visitor_gets_the_sign_in_screen_and_no_data(signed_app, annotated_db):
    with chromium() as browser:
        page, wire = new_page(browser)
        for path in ["", "/review", "/labels", f"/data?project={PROJECT}",
                     f"/export?project={PROJECT}", "/agreement"]:
            page.goto(signed_app + path)
            page.get_by_role("button", name="Sign in").wait_for(timeout=TIMEOUT)
            settle(page)
            body = page.locator("body").inner_text()
            assert "Sign in to open CanDist Studio" in body
            for text in SECRETS + ["Project:", "Review", "Samples"]:
                assert text not in body, (path, text)
            assert not [s for s in SECRETS if s in page.content()], path
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "sign-in-screen.png"))
        assert wire.frames, "no websocket frames seen: the check would prove nothing"
        assert wire.leaks(SECRETS) == []
    with Store(annotated_db) as store:
        assert not store.has_owner()     # looking at the sign-in screen claims nothing


def test_owner_adds_a_reviewer_who_reviews_and_cannot_open_owner_pages(signed_app,
                                                                        annotated_db):
    with chromium() as browser:
        owner, owner_wire = new_page(browser)
        sign_in(owner, signed_app, OWNER)       # the first to sign in owns the database
        owner.get_by_text(f"Project: {PROJECT}").wait_for(timeout=TIMEOUT)
        owner.get_by_text("Team", exact=True).click()
        owner.get_by_role("textbox", name="Email").fill(REVIEWER)
        owner.get_by_role("button", name="Add to project").click()
        owner.get_by_text(f"Added {REVIEWER} as reviewer.").wait_for(timeout=TIMEOUT)
        owner.goto(f"{signed_app}/review?project={PROJECT}")
        owner.locator('[data-testid="stText"]').first.wait_for(timeout=TIMEOUT)
        settle(owner)
        # The wire check sees data when data is sent: the owner's frames hold it.
        assert set(owner_wire.leaks(SECRETS)) >= {PROJECT, *LABELS}
        assert owner_wire.leaks(TEXTS)
        with Store(annotated_db) as store:
            project = store.get_project(PROJECT)
            assert store.role_of(None, OWNER) == "owner"
            assert store.role_of(project.id, REVIEWER) == "reviewer"

        reviewer, wire = new_page(browser)
        sign_in(reviewer, signed_app, REVIEWER)
        reviewer.get_by_text("Your decisions").wait_for(timeout=TIMEOUT)
        nav = reviewer.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Review" in nav
        assert not [p for p in ["Labels", "Data", "Agreement", "Export", "Label new files"] if p in nav]
        for path in ["labels", "data", "annotate", "agreement", "distill", "predictions",
                     "export", "predict"]:
            before = len(wire.frames)
            reviewer.goto(f"{signed_app}/{path}?project={PROJECT}")
            signed_in(reviewer, REVIEWER).wait_for(timeout=TIMEOUT)
            settle(reviewer)
            # Streamlit runs the default page (Home) for a page not in the navigation.
            assert reviewer.locator("h1").first.inner_text() == "CanDist Studio", path
            body = reviewer.locator("body").inner_text()
            assert not [t for t in TEXTS if t in body], path
            sent = b"\n".join(wire.frames[before:])
            assert not [t for t in [*TEXTS, *LABELS.values()] if t.encode() in sent], path

        reviewer.goto(f"{signed_app}/review?project={PROJECT}")
        shown = reviewer.locator('[data-testid="stText"]').first
        shown.wait_for(timeout=TIMEOUT)
        assert "Reviewer" not in [e.inner_text() for e in
                                  reviewer.locator('[data-testid="stWidgetLabel"]').all()]
        # the key handlers attach when the run that draws the buttons has finished
        reviewer.locator(".st-key-label-0 button").first.wait_for(timeout=TIMEOUT)
        settle(reviewer, 3000)
        shown.click()
        reviewer.keyboard.press("1")
        deadline = time.time() + 30
        with Store(annotated_db) as store:
            project = store.get_project(PROJECT)
            while not store.current_decisions(project.id) and time.time() < deadline:
                time.sleep(0.2)
            saved = list(store.current_decisions(project.id).values())
        reviewer.screenshot(path=str(ARTIFACTS / "reviewer-review.png"))
    assert len(saved) == 1
    assert saved[0].who == REVIEWER
    assert saved[0].label in LABELS
