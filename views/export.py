"""Export: choose the label policy, threshold and format, preview, download the labels."""
import json

import streamlit as st

from candist_core.exporting import (ExportOptions, export_bytes, export_csv_text, export_preview,
                                    export_summary)
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
FORMATS = {"csv": ("CSV (spreadsheets; formula cells neutralised)", "text/csv"),
           "jsonl": ("JSONL (one JSON object a line: Prodigy, Argilla)", "application/jsonl"),
           "parquet": ("Parquet (pandas, Hugging Face datasets; the candidates as a list)",
                       "application/vnd.apache.parquet")}
fmt = st.radio("Format", list(FORMATS), horizontal=True, format_func=lambda f: FORMATS[f][0])
st.caption("The first 20 rows:")
if fmt == "csv":
    st.code(export_csv_text(store, project.id, options=options, limit=20), language=None)
elif fmt == "jsonl":
    st.code("\n".join(json.dumps(r, ensure_ascii=False) for r in
                      export_preview(store, project.id, options=options)), language="json")
else:
    st.dataframe(export_preview(store, project.id, options=options), width="stretch")
# The whole file is built only when the button is pressed.
st.download_button(f"Download cleaned {fmt.upper() if fmt != 'parquet' else 'Parquet'}",
                   lambda: export_bytes(store, project.id, fmt=fmt, options=options),
                   file_name=f"{project.name}-cleaned.{fmt}", mime=FORMATS[fmt][1],
                   type="primary")
