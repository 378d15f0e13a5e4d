"""Shared wiring for pages: the cached store and the selected project."""
from __future__ import annotations

import streamlit as st

from candist_core.records import Project
from candist_core.session import db_path, open_store
from candist_core.store import Store


@st.cache_resource
def _store(path: str) -> Store:
    return open_store(path)


def get_store() -> Store:
    return _store(str(db_path()))


def current_project(store: Store) -> Project | None:
    """The project chosen in the sidebar (kept in session state across pages)."""
    projects = store.list_projects()
    if not projects:
        st.sidebar.info("No project yet.")
        return None
    names = [p.name for p in projects]
    chosen = st.session_state.get("project")
    index = names.index(chosen) if chosen in names else 0
    name = st.sidebar.selectbox("Project", names, index=index)
    st.session_state["project"] = name
    return projects[names.index(name)]
