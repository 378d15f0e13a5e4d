"""Predictions: the student's labels page by page, with agreement and confusion."""
import pandas as pd
import streamlit as st

from candist_core import charts
from candist_core.store import PREDICTION_FILTERS, PREDICTION_ORDERS
from views.common import require_project

store, project = require_project()
st.title("Predictions")
run = store.latest_student_run(project.id)
if run is None:
    st.info("No finished student run yet: distill first.")
    st.stop()
labels = store.label_schema(project.id).names
AGREEMENT = {"any": "(any)", "disagrees_with_teacher": "disagrees with teacher",
             "disagrees_with_human": "disagrees with human",
             "outside_candidates": "outside candidates"}
ORDER = {"confidence_ascending": "confidence ascending",
         "confidence_descending": "confidence descending", "id": "id"}
c1, c2, c3, c4 = st.columns(4)
label = c1.selectbox("Student label", [None] + labels,
                     format_func=lambda l: "(any)" if l is None else l)
agreement = c2.selectbox("Agreement", list(PREDICTION_FILTERS), format_func=AGREEMENT.get)
order = c3.selectbox("Sort by", list(PREDICTION_ORDERS), format_func=ORDER.get)
page_size = 50
total = store.count_predictions(run.id, label=label, agreement=agreement)
page = c4.number_input("Page", 1, max(1, -(-total // page_size)), 1)
rows = store.prediction_page(run.id, label=label, agreement=agreement, order=order,
                             limit=page_size, offset=(int(page) - 1) * page_size)
st.caption(f"{total} predictions match.")
table = pd.DataFrame(rows)
if not table.empty:
    table.insert(0, "review", False)
    edited = st.data_editor(table, width="stretch", disabled=list(table.columns[1:]),
                            hide_index=True, key=f"pred-{page}-{label}-{agreement}-{order}")
    chosen = edited[edited["review"]]["sample_id"].tolist()
    if chosen and st.button(f"Send {len(chosen)} to the review queue"):
        st.session_state["review_first"] = [int(c) for c in chosen]
        st.session_state["queue"] = None  # rebuilt on the Review page, these first
        st.success("They will come first on the Review page.")
summary = store.prediction_summary(run.id)
st.subheader("Per class")
st.dataframe(pd.DataFrame(summary["per_class"]), width="stretch")
if summary["human"]:
    st.plotly_chart(charts.confusion_figure(summary["human"], labels,
                                            title="Student vs human decisions"),
                    width="stretch")
if summary["gold"]:
    st.plotly_chart(charts.confusion_figure(summary["gold"], labels,
                                            title="Student vs gold labels"), width="stretch")
