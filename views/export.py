"""Export: choose the label policy and threshold, preview, download the cleaned CSV."""
import streamlit as st

from candist_core.exporting import ExportOptions, export_csv_text, export_summary
from candist_core.records import CandistError
from views.common import require_project

store, project = require_project()
st.title("Export")
policies = {"Human, then student, then teacher": ("human", "student", "teacher"),
            "Human, then teacher": ("human", "teacher"),
            "Human only": ("human",)}
policy = st.selectbox("Label policy", list(policies))
c1, c2 = st.columns(2)
threshold = c1.slider("Minimum confidence", 0.0, 1.0, 0.0, 0.05)
below = c2.radio("Rows below it", ["blank", "drop"], horizontal=True,
                 format_func={"blank": "keep them unlabeled", "drop": "leave them out"}.get)
try:
    options = ExportOptions(sources=policies[policy], min_confidence=threshold, below=below)
except CandistError as exc:
    st.error(str(exc))
    st.stop()
summary = export_summary(store, project.id, options=options)
counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary.sources.items()))
st.write(f"{summary.rows} rows - label sources {counts or 'none'}.")
st.code(export_csv_text(store, project.id, options=options, limit=20), language=None)
# The whole file is built only when the button is pressed.
st.download_button("Download cleaned CSV",
                   lambda: export_csv_text(store, project.id, options=options),
                   file_name=f"{project.name}-cleaned.csv", mime="text/csv", type="primary")
