"""Shared wiring for pages: the cached store, the job registry, the chosen project."""
from __future__ import annotations

import time

import streamlit as st

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
    """The project chosen in the sidebar (kept in session state across pages)."""
    projects = store.list_projects()
    if not projects:
        st.sidebar.info("No project yet: create one on the Home page.")
        return None
    names = [p.name for p in projects]
    chosen = st.session_state.get("project")
    index = names.index(chosen) if chosen in names else 0
    name = st.sidebar.selectbox("Project", names, index=index, key="project_select")
    st.session_state["project"] = name
    return projects[names.index(name)]


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
            eta = job.eta_seconds()
            st.progress(frac, text=f"{job.name}: {job.done}/{job.total} {unit}"
                        + (f", about {eta:.0f} s left" if eta is not None else ""))
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
