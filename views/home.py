"""Home: open or create a project, its status strip and the next suggested step."""
import streamlit as st

from candist_core.records import CandistError
from candist_core.schema import read_schema
from candist_core.workflow import next_step
from views.common import current_project, get_store

st.title("CanDist Studio")
store = get_store()
st.caption(f"Database: {store.path}")
project = current_project(store)

with st.expander("New project", expanded=project is None):
    name = st.text_input("Project name")
    upload = st.file_uploader("labels.json", type=["json"], key="new_labels")
    if st.button("Create project", disabled=not name or upload is None):
        try:
            schema = read_schema(upload.getvalue(), name=upload.name)
            created = store.create_project(name, schema)
        except CandistError as exc:
            st.error(str(exc))
        else:
            st.session_state["project"] = created.name
            st.rerun()

if project is None:
    st.stop()
st.subheader(f"Project: {project.name}")
if project.task:
    st.caption(project.task)
counts = store.status_counts(project.id)
cols = st.columns(7)
for col, (key, title) in zip(cols, [("samples", "Samples"), ("annotated", "Annotated"),
                                    ("ambiguous", "Ambiguous"), ("reviewed", "Reviewed"),
                                    ("student_runs", "Student runs"),
                                    ("with_gold", "With gold label"),
                                    ("samples", "Exportable")]):
    col.metric(title, counts[key])
st.info(f"Next step: {next_step(counts)}")
