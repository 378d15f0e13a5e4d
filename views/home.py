"""Home: open or create a project, its status strip and the next suggested step; for
owners, the project's team (who may sign in, as owner or reviewer)."""
import pandas as pd
import streamlit as st

from candist_core.access import can_open
from candist_core.records import CandistError
from candist_core.schema import read_schema, schema_from_lines
from candist_core.workflow import PAGES, next_action, next_step
from views.common import (current_project, current_user, get_store, require_page, role_in,
                          show_quality)

st.title("CanDist Studio")
store = get_store()
created = st.session_state.pop("created_project", None)
if created:
    st.success(f"Created project {created!r}; it is now the open project. Next, import "
               f"its texts on the Data page.")
project = current_project(store)
role = require_page("home", store, project)
me = current_user()
if role == "owner":
    st.caption(f"Database: {store.path}")


def create(name: str, upload, task: str, typed: str) -> None:
    try:
        schema = (read_schema(upload.getvalue(), name=upload.name) if upload is not None
                  else schema_from_lines(task, typed))
        made = store.create_project(name, schema)
    except CandistError as exc:
        st.session_state["create_error"] = str(exc)
    else:
        st.session_state["project"] = made.name
        st.session_state["created_project"] = made.name


def add_member(project_id: int) -> None:
    email, new_role = st.session_state["member_email"], st.session_state["member_role"]
    try:
        store.add_member(project_id, email, new_role, added_by=me or "")
    except ValueError as exc:
        st.session_state["team_flash"] = ("error", str(exc))
    else:
        st.session_state["team_flash"] = ("success", f"Added {email.strip().lower()} as "
                                                     f"{new_role}.")
        st.session_state["member_email"] = ""


def remove_member(project_id: int, email: str) -> None:
    if email == me:
        st.session_state["team_flash"] = ("error", "You cannot remove yourself; ask "
                                                   "another owner.")
    elif store.remove_member(project_id, email):
        st.session_state["team_flash"] = ("success", f"Removed {email}.")


def team_section(project) -> None:
    """The project's members; owners add reviewers and owners by email, or remove them."""
    with st.expander("Team", expanded=False):
        if me:
            st.caption(f"Signed in as **{me}** (owner).")
        else:
            st.caption("Sign-in is not configured, so this app serves you alone and you are "
                       "its owner. The members below take effect once sign-in is on: "
                       "whoever runs the app adds the team's sign-in provider (Google, "
                       "Microsoft, Okta...) as an `[auth]` section of "
                       "`.streamlit/secrets.toml` on the server and starts it with `make "
                       "serve-team`; each person then signs in with the email added here.")
        rows = ([(m.email, "owner (whole database)", m.added_by, m.created[:10])
                 for m in store.members(None)]
                + [(m.email, m.role, m.added_by, m.created[:10])
                   for m in store.members(project.id)])
        if rows:
            st.dataframe(pd.DataFrame(rows, columns=["email", "role", "added by", "since"]),
                         hide_index=True)
        else:
            st.caption("No members yet.")
        cols = st.columns([3, 1, 1], vertical_alignment="bottom")
        cols[0].text_input("Email", key="member_email", placeholder="name@example.org",
                           help="The address the person signs in with.")
        cols[1].selectbox("Role", ["reviewer", "owner"], key="member_role",
                          help="Reviewers open the Review page (queue and audit) and see "
                               "their own work; owners open every page and manage the team.")
        cols[2].button("Add to project", on_click=add_member, args=(project.id,))
        removable = [m.email for m in store.members(project.id)]
        if removable:
            cols = st.columns([3, 1], vertical_alignment="bottom")
            gone = cols[0].selectbox("Member", removable, key="member_remove")
            cols[1].button("Remove", on_click=remove_member, args=(project.id, gone))
        flash = st.session_state.pop("team_flash", None)
        if flash:
            getattr(st, flash[0])(flash[1])


def my_stats(project) -> None:
    """A reviewer's own work in the project."""
    times = [t for who, t in store.rater_decision_times(project.id) if who == me]
    st.caption(f"Signed in as **{me}** (reviewer).")
    st.metric("Your decisions", len(times), help="Labels and skips you made in this project.")


def new_project_section() -> None:
    with st.expander("New project", expanded=project is None):
        name = st.text_input("Project name", help="Letters, digits, spaces, '.', '-' or '_'.")
        task = st.text_input("Task (optional)", placeholder="Sort customer messages by topic",
                             help="One sentence on what the labels are for: the teacher reads "
                                  "it. The Labels page can change it later.")
        typed = st.text_area(
            "Labels, one per line", height=130,
            placeholder="billing: charges, invoices, refunds of fees\n"
                        "delivery: where a parcel is, late or lost orders\nother",
            help="At least two. 'name: description' or just the name; the description "
                 "helps the teacher tell the labels apart (the Labels page edits both "
                 "later).")
        upload = st.file_uploader(
            "... or a labels.json", type=["json"], key="new_labels",
            help='{"task": "...", "labels": [{"name": "...", "description": "..."}]}, as '
                 'the Labels page downloads it; used instead of the typed labels.')
        missing = ("Give the project a name." if not name else
                   "Type at least two labels or upload a labels.json."
                   if upload is None and len([x for x in typed.splitlines() if x.strip()]) < 2
                   else None)
        st.button("Create project", disabled=missing is not None, on_click=create,
                  args=(name, upload, task, typed), help=missing)
        if missing and (name or typed):
            st.caption(missing)
        error = st.session_state.pop("create_error", None)
        if error:
            st.error(error)


if role_in(store, None) == "owner":    # only the database's owners create projects
    new_project_section()
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
    ("student_runs", "Student runs", "Finished student runs: full distillations (a small "
                                     "model trained on the candidate sets and the human "
                                     "labels) and the quick updates that retrain its last "
                                     "layer as people review."),
]
for col, (key, title, help_text) in zip(st.columns(len(METRICS)), METRICS):
    col.metric(title, counts[key], help=help_text)
action = next_action(counts)
if counts["annotated"]:
    show_quality(store, project)
if can_open(role, PAGES[action]):
    st.info(f"Next step: {next_step(counts)}")
else:      # a reviewer: the project's next step is an owner's; theirs is the review
    action = "review"
    st.info("Next step for you: review the texts the queue offers (the project's owners "
            "run the annotation, distillation and export).")
link = {"project": project.name, **({"mode": "audit"} if action == "audit" else {})}
st.page_link(f"views/{PAGES[action]}.py", label=f"Go to the {PAGES[action].title()} page"
             + (" (Audit mode)" if action == "audit" else ""),
             icon=":material/arrow_forward:", query_params=link)
if role == "owner":
    team_section(project)
elif me:
    my_stats(project)
