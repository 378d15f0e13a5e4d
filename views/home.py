"""Home: open or create a project, its status strip and the next suggested step."""
import streamlit as st

from candist_core.records import CandistError
from candist_core.schema import read_schema
from candist_core.workflow import PAGES, next_action, next_step
from views.common import current_project, get_store, show_quality

st.title("CanDist Studio")
store = get_store()
st.caption(f"Database: {store.path}")
created = st.session_state.pop("created_project", None)
if created:
    st.success(f"Created project {created!r}; it is now the open project. Next, import "
               f"its texts on the Data page.")
project = current_project(store)


def create(name: str, upload) -> None:
    try:
        schema = read_schema(upload.getvalue(), name=upload.name)
        made = store.create_project(name, schema)
    except CandistError as exc:
        st.session_state["create_error"] = str(exc)
    else:
        st.session_state["project"] = made.name
        st.session_state["created_project"] = made.name


with st.expander("New project", expanded=project is None):
    name = st.text_input("Project name", help="Letters, digits, spaces, '.', '-' or '_'.")
    upload = st.file_uploader(
        "labels.json", type=["json"], key="new_labels",
        help='{"task": "...", "labels": [{"name": "...", "description": "..."}]}: at least '
             'two labels; the descriptions help the teacher tell them apart.')
    st.button("Create project", disabled=not name or upload is None, on_click=create,
              args=(name, upload))
    error = st.session_state.pop("create_error", None)
    if error:
        st.error(error)

if project is None:
    st.stop()
st.subheader(f"Project: {project.name}")
if project.task:
    st.caption(project.task)
counts = store.status_counts(project.id)
METRICS = [
    ("samples", "Samples", "Texts imported into the project."),
    ("with_gold", "With gold label", "Texts imported with a known correct label (used only "
                                     "to measure quality, never to train)."),
    ("annotated", "Annotated", "Texts with a candidate set from the latest teacher run."),
    ("ambiguous", "Ambiguous", "Annotated texts whose candidate set holds more than one "
                               "label: the ones worth a human look."),
    ("reviewed", "Reviewed", "Texts with a human decision (a label or a skip)."),
    ("student_runs", "Student runs", "Finished distillations: small models trained on the "
                                     "candidate sets and the human labels."),
]
for col, (key, title, help_text) in zip(st.columns(len(METRICS)), METRICS):
    col.metric(title, counts[key], help=help_text)
action = next_action(counts)
if counts["annotated"]:
    show_quality(store, project)
st.info(f"Next step: {next_step(counts)}")
link = {"project": project.name, **({"mode": "audit"} if action == "audit" else {})}
st.page_link(f"views/{PAGES[action]}.py", label=f"Go to the {PAGES[action].title()} page"
             + (" (Audit mode)" if action == "audit" else ""),
             icon=":material/arrow_forward:", query_params=link)
