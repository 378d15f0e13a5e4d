"""Home: the open project's status strip and the next suggested step."""
import streamlit as st

from candist_core.records import CandistError
from candist_core.workflow import next_step
from pages.common import current_project, get_store

st.title("CanDist Studio")
store = get_store()
project = current_project(store)
if project is None:
    st.info("Create a project with `python -m candist_core init`.")
    st.stop()

st.subheader(f"Project: {project.name}")
if project.task:
    st.caption(project.task)
try:
    counts = store.status_counts(project.id)
except CandistError as exc:
    st.error(str(exc))
    st.stop()
cols = st.columns(6)
for col, (key, title) in zip(cols, [("samples", "Samples"), ("annotated", "Annotated"),
                                    ("ambiguous", "Ambiguous"), ("reviewed", "Reviewed"),
                                    ("student_runs", "Student runs"),
                                    ("with_gold", "With gold label")]):
    col.metric(title, counts[key])
st.info(f"Next step: {next_step(counts)}")
