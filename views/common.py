"""Shared wiring for pages: the cached store, the job registry, the chosen project, and
who the visitor is (sign-in and roles, issue 15).

Without an ``[auth]`` section in ``.streamlit/secrets.toml`` the app is local and single
user: the visitor is an owner and names themselves in the sidebar. With one, every visitor
signs in through the OIDC provider (``st.login``), is known by ``st.user.email`` and may
open only the pages their role in the project allows (``candist_core.access``).
"""
from __future__ import annotations

import sys

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from candist_core.access import can_open, pages_for
from candist_core.audit import ESTIMATES, quality_report
from candist_core.jobs import Job, JobRegistry
from candist_core.records import Project
from candist_core.session import db_path, open_store
from candist_core.store import Store


@st.cache_resource
def _store(path: str) -> Store:
    return open_store(path)


@st.cache_resource
def registry() -> JobRegistry:
    return JobRegistry()


def get_store() -> Store:
    return _store(str(db_path()))


def sign_in_configured() -> bool:
    """Whether sign-in is on: an ``[auth]`` section in the secrets (no secrets file: no)."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return False


def current_user() -> str | None:
    """The signed-in visitor's email (lower case), or ``None``: not signed in, sign-in not
    configured, or the provider gave no usable email (none, or one it marks unverified)."""
    if not sign_in_configured() or not st.user.get("is_logged_in"):
        return None
    email = st.user.get("email")
    if not isinstance(email, str) or not email.strip() or st.user.get("email_verified") is False:
        return None
    return email.strip().lower()


def sign_in_gate(store: Store) -> str | None:
    """Let only signed-in visitors past: the sign-in screen and ``st.stop()`` for anyone
    else, before any page or data runs. Returns the visitor's email, or ``None`` when
    sign-in is not configured (local, single user). The first visitor of a database
    without owners becomes its owner."""
    if not sign_in_configured():
        return None
    email = current_user()
    if email is None:
        st.title("CanDist Studio")
        if st.user.get("is_logged_in"):
            st.error("Your sign-in gave no verified email address, and CanDist knows people "
                     "by their email. Sign in with another account, or ask the owner to "
                     "configure the provider to send the `email` claim.")
            st.button("Sign out", on_click=st.logout)
        else:
            st.info("Sign in to open CanDist Studio.")
            st.button("Sign in", type="primary", on_click=st.login)
        st.stop()
    if store.claim_owner_if_none(email):
        st.toast(f"You are the first to sign in, so you own this database, {email}.")
    st.sidebar.caption(f"Signed in as **{email}**")
    st.sidebar.button("Sign out", key="sign_out", on_click=st.logout)
    return email


def role_in(store: Store, project: Project | None) -> str | None:
    """The visitor's role in ``project`` (``None``: the whole database): ``'owner'``,
    ``'reviewer'`` or ``None``. Everyone is an owner without sign-in."""
    if not sign_in_configured():
        return "owner"
    email = current_user()
    if email is None:
        return None
    return store.role_of(project.id if project is not None else None, email)


def _visible_projects(store: Store) -> list[Project]:
    projects = store.list_projects()
    if not sign_in_configured():
        return projects
    return [p for p in projects if role_in(store, p) is not None]


def _chosen_name(names: list[str]) -> str:
    chosen = st.session_state.get("project") or st.query_params.get("project")
    return chosen if chosen in names else names[0]


def chosen_project(store: Store) -> Project | None:
    """The project the sidebar will show, without drawing it (``app.py`` reads it to
    pick the pages the visitor's role may open)."""
    projects = _visible_projects(store)
    if not projects:
        return None
    names = [p.name for p in projects]
    return projects[names.index(_chosen_name(names))]


def navigation_pages(store: Store, pages: list) -> list:
    """The ``st.Page``s of ``pages`` the visitor may open in the chosen project (a page
    id is its ``url_path``, the default page's ``home``). Only the list shown: each page
    checks again with :func:`require_page`, since a URL can name any page."""
    if not sign_in_configured():
        return pages
    allowed = set(pages_for(role_in(store, chosen_project(store)))) | {"home"}
    return [p for p in pages if (p.url_path or "home") in allowed]


def current_project(store: Store) -> Project | None:
    """The project chosen in the sidebar, kept in session state across pages and in the
    URL (``?project=name``), so a reload or a shared link opens the same project. Under
    sign-in, only the projects the visitor is a member of."""
    projects = _visible_projects(store)
    if not projects:
        if sign_in_configured():
            st.sidebar.info("You are not a member of any project yet.")
        else:
            st.sidebar.info("No project yet: create one on the Home page.")
        return None
    names = [p.name for p in projects]
    chosen = _chosen_name(names)
    st.session_state["project"] = chosen
    st.session_state["project_select"] = chosen
    name = st.sidebar.selectbox("Project", names, key="project_select", on_change=_choose,
                                help="Kept in the page address: bookmark or share it.")
    st.query_params["project"] = name
    if st.session_state.get("reviewer") not in (None, "", DEFAULT_REVIEWER):
        st.query_params["reviewer"] = st.session_state["reviewer"]   # a reload keeps it
    return projects[names.index(name)]


def _choose() -> None:
    st.session_state["project"] = st.session_state["project_select"]


def require_page(page: str, store: Store, project: Project | None) -> str:
    """Refuse, on the server, a visitor whose role in ``project`` may not open ``page``
    (a ``views/`` file stem): an error and ``st.stop()``. Returns the role (``'owner'``
    without sign-in). Call it at the top of every page, after the project is chosen."""
    if not sign_in_configured():
        return "owner"
    email = current_user()
    if email is None:           # app.py's gate stops these first; a page run alone too
        sign_in_gate(store)
    role = role_in(store, project)
    if role is None:
        if project is not None:
            st.error(f"You have no access to this project; ask its owner to add {email}.")
        else:
            st.error(f"You have no access to any project here; ask an owner to add {email}.")
        st.stop()
    if not can_open(role, page):
        st.error(f"The {page.title()} page is for the project's owners; you are a {role} "
                 f"of {project.name if project else 'this database'!r}.")
        st.stop()
    return role


def require_project(page: str | None = None) -> tuple[Store, Project]:
    """The store and the chosen project, stopping the page when there is none or when the
    visitor's role may not open ``page`` (see :func:`require_page`; ``None``: any member)."""
    store = get_store()
    project = current_project(store)
    if project is None:
        st.info("Create or open a project on the Home page first.")
        st.stop()
    if page is not None:
        require_page(page, store, project)
    elif role_in(store, project) is None:
        require_page("home", store, project)
    return store, project


class Kept(dict):
    """A page's kept choices. What the database holds may be from an older version (a
    label policy since renamed, a range since narrowed): a value the widget would refuse
    gives way to the default instead of breaking the page."""

    def choice(self, name: str, options, default):
        value = self.get(name, default)
        return value if value in list(options) else default

    def number(self, name: str, low, high, default):
        value = self.get(name, default)
        ok = type(value) is type(default) and low <= value <= high
        return value if ok else default

    def text(self, name: str, default: str = "") -> str:
        value = self.get(name, default)
        return value if isinstance(value, str) else default


def kept_settings(store, page: str, project_id: int):
    """(the settings, ``keep(name, value)``) of a page: the choices made there last.
    Streamlit forgets a widget's value once its page is left, and a reload forgets the
    session: they are kept in the session and in the project's settings in the database.
    ``keep`` records a widget's value (written only when it changes) and returns it."""
    key = f"{page}-settings-{project_id}"
    if key not in st.session_state:
        st.session_state[key] = Kept(store.page_settings(project_id, page))
    kept = st.session_state[key]

    def keep(name: str, value):
        if kept.get(name) != value:
            kept[name] = value
            store.set_page_settings(project_id, page, dict(kept))
        return value
    return kept, keep


def restore_defaults(store, page: str, project_id: int) -> None:
    """Forget a page's kept choices, in the database and the session, so that its widgets
    are drawn afresh with the defaults (a callback: it runs before they are drawn)."""
    store.set_page_settings(project_id, page, {})
    prefix, suffix = f"{page}-", f"-{project_id}"
    for key in [k for k in st.session_state if isinstance(k, str)
                and k.startswith(prefix) and k.endswith(suffix)]:
        del st.session_state[key]           # the seeded widgets and the kept settings


def seeded(page: str, project_id: int, name: str, value) -> str:
    """The session key of a kept widget, seeded with its kept ``value`` when the widget is
    drawn afresh (first visit, reload, back from another page); the widget then takes its
    value from the key alone. A widget without a key whose default changes is a new widget
    to Streamlit: redrawn after each change, a slider lost the keyboard focus after one
    arrow key, and a second change made during the rerun was lost (a walk found)."""
    key = f"{page}-{name}-{project_id}"
    if key not in st.session_state:
        st.session_state[key] = value
    return key


DEFAULT_REVIEWER = "reviewer"


def reviewer_name() -> str:
    """Who the decisions are recorded under: the signed-in email, never a text box; without
    sign-in, the name typed in the sidebar, kept across pages and in the address (a new tab
    starts as "reviewer": taking the last name used would credit one person's decisions to
    another, a walk found)."""
    if sign_in_configured():
        email = current_user()
        if email is None:
            st.stop()
        return email
    kept = st.session_state.get("reviewer") or st.query_params.get("reviewer") \
        or DEFAULT_REVIEWER
    who = st.sidebar.text_input("Reviewer", value=kept,
                                help="Your name in the audit trail. Undo and the history "
                                     "below show only the decisions made under this name. "
                                     "Kept in the page address, so a reload keeps it.")
    st.session_state["reviewer"] = who
    if who and who != DEFAULT_REVIEWER:
        st.query_params["reviewer"] = who
    elif "reviewer" in st.query_params:
        del st.query_params["reviewer"]
    return who


def current_reviewer() -> str | None:
    """The name decisions would be recorded under, read without drawing the sidebar box
    (pages other than Review): the signed-in email, else the name kept in the session or
    the address."""
    if sign_in_configured():
        return current_user()
    return st.session_state.get("reviewer") or st.query_params.get("reviewer") \
        or DEFAULT_REVIEWER


@st.cache_resource
def _said(text: str) -> bool:
    print(f"warning: {text}", file=sys.stderr, flush=True)
    return True


def warn_once(text: str) -> None:
    """Print ``text`` on the server's stderr once per process."""
    _said(text)


def show_job(job: Job | None, *, unit: str = "samples") -> None:
    """Progress, ETA and a cancel button for a background job; refreshes itself."""
    if job is None:
        return

    @st.fragment(run_every=1.0 if job.running else None)
    def panel() -> None:
        if job.running:
            tracker = job.stats.get("progress")   # named stages and a steady ETA, if any
            eta = tracker.eta_seconds() if tracker is not None else job.eta_seconds()
            # The tracker's count follows its stage (an extended run's new epochs at once).
            n, total = ((tracker.done, tracker.total) if tracker is not None and tracker.total
                        else (job.done, job.total))
            frac = (tracker.fraction() if tracker is not None
                    else min(1.0, n / total) if total else 0.0)
            done = (f"{n}/{total} {unit}" if total
                    else job.stats.get("stage") or "starting")
            st.progress(frac, text=f"{job.name}: {done}"
                        + (f", about {eta:.0f} s left" if eta is not None else ""))
            if tracker is not None:
                st.caption(f"Now: {tracker.stage}")
            stats = job.stats
            if stats.get("prompt_tokens") or stats.get("errors"):
                st.caption(f"tokens {stats.get('prompt_tokens', 0)} in / "
                           f"{stats.get('completion_tokens', 0)} out, cost "
                           f"${stats.get('cost', 0):.4f}, errors {stats.get('errors') or 0}")
            if st.button("Cancel", key=f"cancel-{job.key}"):
                job.cancel.set()
        else:
            line = job.outcome()
            if line and job.status == "failed":
                st.error(line)
            elif line:
                st.success(line)
            if st.session_state.get(f"refreshed-{job.key}") is None:
                st.session_state[f"refreshed-{job.key}"] = True
                st.rerun(scope="app")

    panel()


def show_quality(store: Store, project: Project, *, estimates: bool = True) -> None:
    """The teacher quality gate (a warning), or how to measure quality when it is unknown,
    then the audit's estimates with their 95% intervals (candist_core.audit)."""
    report = quality_report(store, project.id)
    if report.gate:
        st.warning(report.gate, icon=":material/warning:")
    elif report.hint:
        st.info(report.hint, icon=":material/help:")
    if estimates and report.sentences:
        st.caption("Measured on the audit (texts drawn at random and labelled blind), 95% "
                   "Wilson intervals: " + "; ".join(report.sentences[k] for k in ESTIMATES
                                                    if k in report.sentences) + ".")
