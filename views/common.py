"""Shared wiring for pages: the cached store, the job registry, the chosen project."""
from __future__ import annotations

import time

import streamlit as st

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


def current_project(store: Store) -> Project | None:
    """The project chosen in the sidebar, kept in session state across pages and in the
    URL (``?project=name``), so a reload or a shared link opens the same project."""
    projects = store.list_projects()
    if not projects:
        st.sidebar.info("No project yet: create one on the Home page.")
        return None
    names = [p.name for p in projects]
    chosen = st.session_state.get("project") or st.query_params.get("project")
    if chosen not in names:
        chosen = names[0]
    st.session_state["project"] = chosen
    st.session_state["project_select"] = chosen
    name = st.sidebar.selectbox("Project", names, key="project_select", on_change=_choose,
                                help="Kept in the page address: bookmark or share it.")
    st.query_params["project"] = name
    return projects[names.index(name)]


def _choose() -> None:
    st.session_state["project"] = st.session_state["project_select"]


def require_project() -> tuple[Store, Project]:
    store = get_store()
    project = current_project(store)
    if project is None:
        st.info("Create or open a project on the Home page first.")
        st.stop()
    return store, project


def show_job(job: Job | None, *, unit: str = "samples") -> None:
    """Progress, ETA and a cancel button for a background job; refreshes itself."""
    if job is None:
        return

    @st.fragment(run_every=1.0 if job.running else None)
    def panel() -> None:
        if job.running:
            frac = job.done / job.total if job.total else 0.0
            tracker = job.stats.get("progress")   # named stages and a steady ETA, if any
            eta = tracker.eta_seconds() if tracker is not None else job.eta_seconds()
            done = (f"{job.done}/{job.total} {unit}" if job.total else "starting")
            st.progress(frac, text=f"{job.name}: {done}"
                        + (f", about {eta:.0f} s left" if eta is not None else ""))
            if tracker is not None:
                st.caption(f"Now: {tracker.stage}")
            stats = job.stats
            if stats.get("prompt_tokens") or stats.get("errors"):
                st.caption(f"tokens {stats.get('prompt_tokens', 0)} in / "
                           f"{stats.get('completion_tokens', 0)} out, cost "
                           f"${stats.get('cost', 0):.4f}, errors {stats.get('errors') or 0}")
            if st.button("Cancel", key=f"cancel-{id(job)}"):
                job.cancel.set()
        elif job.status == "failed":
            st.error(f"{job.name} failed: {job.error}")
        else:
            took = (job.finished or time.time()) - job.started
            st.success(f"{job.name} {job.status} in {took:.0f} s.")
            if st.session_state.get(f"refreshed-{id(job)}") is None:
                st.session_state[f"refreshed-{id(job)}"] = True
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
