"""Data: upload a CSV, JSONL or Parquet file, map its columns, check it, import it."""
import streamlit as st

from candist_core.importing import (ImportOptions, file_format, import_csv, plan_import,
                                    read_table)
from candist_core.records import CandistError
from views.common import require_project

store, project = require_project()
st.title("Data")
st.caption(f"{store.count_samples(project.id)} samples in the project.")
upload = st.file_uploader("File of texts (CSV, JSONL or Parquet)",
                          type=["csv", "tsv", "txt", "jsonl", "ndjson", "parquet"])
if upload is None:
    st.stop()
fmt = file_format(upload.name)
delimiter, encoding = ",", "auto (UTF-8)"
if fmt == "csv":
    delimiter = st.selectbox("Delimiter", [",", ";", "\t", "|"],
                             format_func=lambda d: {"\t": "tab"}.get(d, d))
if fmt != "parquet":
    encoding = st.selectbox("Encoding", ["auto (UTF-8)", "cp1252", "latin-1", "utf-16"])
data = upload.getvalue()
try:
    frame, _ = read_table(data, name=upload.name, options=ImportOptions(
        text_col=None, delimiter=delimiter,
        encoding=None if encoding.startswith("auto") else encoding))
except CandistError as exc:
    st.error(str(exc))
    st.stop()
columns = list(frame.columns)
st.dataframe(frame.head(20), width="stretch")
c1, c2, c3 = st.columns(3)
text_col = c1.selectbox("Text column", columns,
                        index=columns.index("text") if "text" in columns else 0)
none = "(none)"
gold_col = c2.selectbox("Gold label column (optional)", [none] + columns,
                        index=(columns.index("label") + 1) if "label" in columns else 0)
id_col = c3.selectbox("Id column (optional)", [none] + columns,
                      index=(columns.index("id") + 1) if "id" in columns else 0)
options = ImportOptions(text_col=text_col, gold_col=None if gold_col == none else gold_col,
                        id_col=None if id_col == none else id_col, delimiter=delimiter,
                        encoding=None if encoding.startswith("auto") else encoding)
plan = plan_import(frame, store.label_schema(project.id), options=options,
                   existing_ids=store.existing_ext_ids(project.id))
st.write(f"{len(plan.rows)} new row(s) of {plan.report.rows}; "
         f"{plan.report.already_present} already in the project.")
for line in plan.report.messages():
    st.warning(line)
if st.button("Import", type="primary", disabled=not plan.rows):
    bar = st.progress(0.0, text="Importing")
    try:
        report = import_csv(store, project.id, data, options=options, name=upload.name)
    except CandistError as exc:
        st.error(str(exc))
    else:
        bar.progress(1.0, text="Imported")
        st.success(f"Imported {report.imported} rows.")
