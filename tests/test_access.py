"""candist_core.access: the role table and the serving check (pure)."""
from pathlib import Path

import pytest

from candist_core.access import (ALLOW_OPEN_ENV, PAGES, can_open, is_loopback, pages_for,
                                 serving_problem)

ROOT = Path(__file__).resolve().parent.parent
OWNER_ONLY = ["labels", "data", "annotate", "distill", "predictions", "export", "predict",
              "agreement"]


def test_every_view_file_is_in_the_role_table():
    stems = {p.stem for p in (ROOT / "views").glob("*.py")} - {"common", "__init__"}
    assert stems <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_owners_open_every_page(page):
    assert can_open("owner", page)


@pytest.mark.parametrize("page", OWNER_ONLY)
def test_reviewers_cannot_open_owner_pages(page):
    assert not can_open("reviewer", page)


def test_reviewers_open_home_and_review_only():
    assert pages_for("reviewer") == ["home", "review"]
    assert pages_for("owner") == list(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_a_visitor_without_a_role_opens_nothing(page):
    assert not can_open(None, page)
    assert pages_for(None) == []


def test_unknown_pages_and_roles_are_errors_not_silent_refusals():
    with pytest.raises(ValueError, match="unknown page 'settings'"):
        can_open("owner", "settings")
    with pytest.raises(ValueError, match="unknown role 'admin'"):
        can_open("admin", "review")


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost",
                                     "LOCALHOST", "unix:///tmp/candist.sock"])
def test_loopback_addresses(address):
    assert is_loopback(address)


@pytest.mark.parametrize("address", [None, "", "0.0.0.0", "::", "192.168.1.20", "10.0.0.5",
                                     "example.org", "my-laptop.local"])
def test_open_addresses(address):
    assert not is_loopback(address)


def test_loopback_needs_no_sign_in():
    assert serving_problem("127.0.0.1", sign_in_configured=False, allow_open=False) is None


def test_any_address_is_fine_with_sign_in():
    assert serving_problem("0.0.0.0", sign_in_configured=True, allow_open=False) is None
    assert serving_problem(None, sign_in_configured=True, allow_open=False) is None


def test_open_address_without_sign_in_is_refused_and_says_how_to_fix_it():
    text = serving_problem("0.0.0.0", sign_in_configured=False, allow_open=False)
    assert "'0.0.0.0' without sign-in" in text
    assert "Refusing to serve" in text
    assert "secrets.toml" in text and f"{ALLOW_OPEN_ENV}=1" in text


def test_unset_address_binds_everything_so_it_is_refused_too():
    text = serving_problem(None, sign_in_configured=False, allow_open=False)
    assert "every network interface" in text and "Refusing" in text


def test_allow_open_turns_the_refusal_into_a_warning():
    text = serving_problem("0.0.0.0", sign_in_configured=False, allow_open=True)
    assert "without sign-in" in text
    assert "Refusing" not in text


# ------------------------------------------------ the app's guards, headless (AppTest)
from streamlit import config  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from candist_core.schema import load_schema  # noqa: E402
from candist_core.store import Store  # noqa: E402

AUTH = {"auth": {"redirect_uri": "http://127.0.0.1:8501/oauth2callback",
                 "cookie_secret": "a-test-cookie-secret-that-is-long-enough",
                 "client_id": "candist", "client_secret": "secret",
                 "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}}
SECRET_TEXT = "What is the secret sample text number 7 ?"


@pytest.fixture
def app_db(tmp_path, trec_dir, monkeypatch):
    db = tmp_path / "access.db"
    with Store(db) as store:
        project = store.create_project("trec", load_schema(trec_dir / "labels.json"))
        store.insert_samples(project.id, [("s7", SECRET_TEXT, None)])
    monkeypatch.setenv("CANDIST_DB", str(db))
    monkeypatch.delenv(ALLOW_OPEN_ENV, raising=False)
    return db


def run(script: str, *, user: dict | None = None, secrets: dict | None = None,
        address: str = "127.0.0.1") -> AppTest:
    at = AppTest.from_file(str(ROOT / script), default_timeout=60)
    if secrets is not None:
        at.secrets = secrets
    if user is not None:
        at.user = user
    at_address(at, address)
    assert not at.exception, at.exception
    return at


def at_address(at: AppTest, address: str) -> None:
    """Run ``at`` as if served on ``address`` (app.py reads st.get_option)."""
    before = config.get_option("server.address")
    config.set_option("server.address", address)
    try:
        at.run()
    finally:
        config.set_option("server.address", before)


def shown(at: AppTest) -> str:
    return " ".join(str(getattr(e, "value", "")) for e in at.main) + " ".join(
        str(getattr(e, "value", "")) for e in at.sidebar)


def test_without_sign_in_the_app_is_local_and_single_user(app_db):
    at = run("app.py")
    assert [s.value for s in at.subheader] == ["Project: trec"]
    assert not [b for b in at.button if b.label == "Sign in"]


def test_a_visitor_who_is_not_signed_in_sees_only_the_sign_in_button(app_db):
    at = run("app.py", secrets=AUTH, user={"is_logged_in": False})
    assert [b.label for b in at.button] == ["Sign in"]
    assert "trec" not in shown(at) and not at.subheader and not at.metric
    with Store(app_db) as store:
        assert not store.has_owner()


@pytest.mark.parametrize("page", OWNER_ONLY)
def test_a_reviewer_running_an_owner_page_is_refused_by_the_page_itself(app_db, page):
    if not (ROOT / "views" / f"{page}.py").exists():
        pytest.skip(f"views/{page}.py not there")
    with Store(app_db) as store:
        store.add_member(None, "boss@example.org", "owner")
        store.add_member(store.get_project("trec").id, "rev@example.org", "reviewer")
    at = run(f"views/{page}.py", secrets=AUTH,
             user={"is_logged_in": True, "email": "Rev@Example.org"})
    assert [e.value for e in at.error] == [
        f"The {page.title()} page is for the project's owners; you are a reviewer of 'trec'."]
    assert not at.title and SECRET_TEXT not in shown(at)


def test_a_stranger_is_told_whom_to_ask(app_db):
    with Store(app_db) as store:
        store.add_member(None, "boss@example.org", "owner")
    at = run("app.py", secrets=AUTH, user={"is_logged_in": True, "email": "who@example.org"})
    assert [e.value for e in at.error] == [
        "You have no access to any project here; ask an owner to add who@example.org."]
    assert not at.metric


def test_the_first_signed_in_user_owns_the_database_and_sees_the_team(app_db):
    at = run("app.py", secrets=AUTH, user={"is_logged_in": True, "email": "First@Example.org"})
    assert [s.value for s in at.subheader] == ["Project: trec"]
    assert "Add to project" in [b.label for b in at.button]
    with Store(app_db) as store:
        assert store.role_of(None, "first@example.org") == "owner"
    at.text_input(key="member_email").input("rev@example.org")
    next(b for b in at.button if b.label == "Add to project").click()
    at_address(at, "127.0.0.1")
    assert "Added rev@example.org as reviewer." in [s.value for s in at.success]
    with Store(app_db) as store:
        assert store.role_of(store.get_project("trec").id, "rev@example.org") == "reviewer"


def test_an_unverified_email_is_not_signed_in(app_db):
    at = run("app.py", secrets=AUTH, user={"is_logged_in": True, "email": "x@example.org",
                                           "email_verified": False})
    assert "no verified email" in at.error[0].value
    assert [b.label for b in at.button] == ["Sign out"]


def test_serving_an_open_address_without_sign_in_is_refused(app_db, capfd):
    at = run("app.py", address="0.0.0.0")
    assert "Refusing to serve" in at.error[0].value
    assert not at.subheader and not at.metric
    assert "warning: CanDist Studio is served on address '0.0.0.0'" in capfd.readouterr().err


def test_allow_open_serves_with_a_warning_banner(app_db, monkeypatch, capfd):
    monkeypatch.setenv(ALLOW_OPEN_ENV, "1")
    at = run("app.py", address="0.0.0.0")
    assert "without sign-in" in at.warning[0].value
    assert [s.value for s in at.subheader] == ["Project: trec"]
    assert "CANDIST_ALLOW_OPEN=1 allows this" in capfd.readouterr().err


def test_an_open_address_is_fine_with_sign_in(app_db):
    at = run("app.py", secrets=AUTH, user={"is_logged_in": False}, address="0.0.0.0")
    assert not at.error and [b.label for b in at.button] == ["Sign in"]
