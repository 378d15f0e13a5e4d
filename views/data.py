"""Data: import a CSV, JSONL or Parquet file (map its columns, check, import), and browse
the project's texts with full-text search and filters."""
import json
from dataclasses import replace

import pandas as pd
import streamlit as st

from candist_core.importing import (ImportOptions, file_format, import_csv, plan_import,
                                    read_table)
from candist_core.records import CandistError
from candist_core.store import SOURCES
from candist_core.tables import WRAP_ROW_PX, fitted_widths, shown_columns, wrapped_height
from views.common import require_project

store, project = require_project("data")
st.title("Data")
total = store.count_samples(project.id)
st.caption(f"{total} samples in the project.")
flash = st.session_state.pop("data_flash", None)
if flash:
    st.success(flash)
labels = store.label_schema(project.id).names
PAGE_SIZE = 50


def import_section() -> None:
    upload = st.file_uploader("File of texts (CSV, JSONL or Parquet)",
                              type=["csv", "tsv", "txt", "jsonl", "ndjson", "parquet"])
    if upload is None:
        return
    fmt = file_format(upload.name)
    delimiter, encoding, skip_bad = ",", "auto (UTF-8)", False
    r1, r2, r3 = st.columns(3, vertical_alignment="bottom")
    if fmt == "csv":
        delimiter = r1.selectbox("Delimiter", [",", ";", "\t", "|"],
                                 format_func=lambda d: {"\t": "tab"}.get(d, d))
        skip_bad = r3.checkbox("Skip malformed lines", help="Leave out lines with the wrong "
                               "number of fields (each is listed by its line number) instead "
                               "of refusing the whole file.")
    if fmt != "parquet":
        encoding = r2.selectbox("Encoding", ["auto (UTF-8)", "cp1252", "latin-1", "utf-16"],
                                help="The character encoding of the file; UTF-8 (with or "
                                     "without BOM) is read automatically.")
    data = upload.getvalue()
    try:
        frame, read_report = read_table(data, name=upload.name, options=ImportOptions(
            text_col=None, delimiter=delimiter, skip_bad_lines=skip_bad,
            encoding=None if encoding.startswith("auto") else encoding))
    except CandistError as exc:
        st.error(str(exc))
        return
    columns = list(frame.columns)
    preview = frame.head(20)
    preview.index = range(1, len(preview) + 1)   # "row N" in the messages below
    st.caption(f"The first {len(preview)} of {len(frame)} rows, numbered as the messages "
               f"below number them:" if len(frame) > len(preview) else
               f"All {len(frame)} rows, numbered as the messages below number them:")
    st.dataframe(preview, width="stretch")
    c1, c2, c3 = st.columns(3)
    text_col = c1.selectbox("Text column", columns,
                            index=columns.index("text") if "text" in columns else 0)
    none = "(none)"
    gold_col = c2.selectbox("Gold label column (optional)", [none] + columns,
                            index=(columns.index("label") + 1) if "label" in columns else 0,
                            help="Known correct labels, if the file has them: used only to "
                                 "measure the teacher's and the student's accuracy.")
    id_col = c3.selectbox("Id column (optional)", [none] + columns,
                          index=(columns.index("id") + 1) if "id" in columns else 0,
                          help="Without one, ids are derived from the text, so importing "
                               "the same file twice adds nothing.")
    options = ImportOptions(text_col=text_col, gold_col=None if gold_col == none else gold_col,
                            id_col=None if id_col == none else id_col, delimiter=delimiter,
                            encoding=None if encoding.startswith("auto") else encoding,
                            skip_bad_lines=skip_bad)
    schema, existing = store.label_schema(project.id), store.existing_ext_ids(project.id)
    unknown = plan_import(frame, schema, options=options,
                          existing_ids=existing).report.unknown_gold if options.gold_col else {}
    if unknown:
        st.caption("Gold values that are not label names: say which label each one means "
                   "(or leave it dropped).")
        drop = "(drop)"
        chosen = {}
        for column, value in zip(st.columns(min(4, len(unknown))) * len(unknown),
                                 sorted(unknown, key=lambda v: (-unknown[v], v))[:20]):
            rows = f"{unknown[value]} row{'s' if unknown[value] != 1 else ''}"
            pick = column.selectbox(f"'{value}' ({rows}) means", [drop, *labels],
                                    key=f"gold-map-{value}")
            if pick != drop:
                chosen[value] = pick
        options = replace(options, gold_map=tuple(sorted(chosen.items())))
    plan = plan_import(frame, schema, options=options, existing_ids=existing,
                       report=read_report)
    st.write(f"{len(plan.rows)} new row(s) of {plan.report.rows}; "
             f"{plan.report.already_present} already in the project.")
    for line in plan.report.messages():
        st.warning(line)
    if st.button("Import", type="primary", disabled=not plan.rows):
        try:
            with st.spinner("Importing"):
                report = import_csv(store, project.id, data, options=options,
                                    name=upload.name)
        except CandistError as exc:
            st.error(str(exc))
        else:
            st.session_state["data_flash"] = " ".join(
                [f"Imported {report.imported} rows.", *report.messages()])
            st.rerun()   # the counts above and the table below include them


with st.expander("Import a file", expanded=total == 0):
    import_section()
if total == 0:
    st.stop()

st.subheader("Texts")
ANY = "(any)"
SOURCE_NAMES = {"human": "human decision", "student": "student prediction",
                "teacher": "teacher's first label", "none": "no label yet"}
search = st.text_input("Search the texts", placeholder="words that must all occur",
                       key=f"data-search-{project.id}",    # each project its own search
                       help="Full-text search: every word must occur in the text (the last "
                            "one may be the start of a word); case and accents are ignored.")
f1, f2, f3, f4 = st.columns(4)
# The best label known now, not the export's: the Export page may leave a text unlabeled,
# or out of the file, under its minimum confidence (a walk read "the label the export would
# give" on a row the export at 90% gave none).
BEST_LABEL = ("The best label known now: the human label if there is one, else the "
              "student's prediction, else the teacher's first label. The Export page may "
              "leave it empty, or leave the text out, when it is under the export's minimum "
              "confidence.")
label = f1.selectbox("Label", [ANY] + labels, help=BEST_LABEL)
source = f2.selectbox("Label source", [ANY, *SOURCES],
                      format_func=lambda s: SOURCE_NAMES.get(s, s),
                      help="Where that label comes from.")
decided = f3.selectbox("Reviewed", [ANY, "yes", "no"],
                       help="Whether a person has decided on the text (a label or a skip).")
set_size = f4.selectbox("Candidate-set size", [ANY, *range(len(labels) + 1)],
                        help="How many labels the teacher kept as possible for the text "
                             "(0: not annotated yet; more than 1: ambiguous).")
filters = {"search": search or None, "label": None if label == ANY else label,
           "source": None if source == ANY else source,
           "decided": None if decided == ANY else decided == "yes",
           "set_size": None if set_size == ANY else int(set_size)}
matched = store.count_browse(project.id, **filters)
pages = max(1, -(-matched // PAGE_SIZE))
p1, p2 = st.columns([3, 1], vertical_alignment="bottom")
page = p2.number_input(f"Page (of {pages})", 1, pages, 1, key=f"data-page-{filters}")
p1.caption(f"{matched} of {total} texts match.")
rows = store.browse_samples(project.id, **filters, limit=PAGE_SIZE,
                               offset=(int(page) - 1) * PAGE_SIZE)
if rows:
    table = pd.DataFrame(rows).fillna("")
    table["candidates"] = [", ".join(json.loads(c)) if c else "" for c in table["candidates"]]
    # A skip is the one decision the label and its source do not show: said in the source
    # (a column of its own cut the gold labels off at 1280 px).
    table["source"] = [f"{src}, skipped" if d == "skip" else src
                       for src, d in zip(table["source"], table["decision"])]
    order = shown_columns({c: table[c] for c in ["id", "text", "label", "source",
                                                 "candidates", "gold"]
                           if c in table})
    fit = fitted_widths({c: table[c] for c in order}, min_flex=220, wraps=tuple(order))
    help_ = {"label": BEST_LABEL,
             "source": "human, student, teacher or none; 'skipped' when a reviewer "
                       "skipped the text",
             "candidates": "The teacher's candidate set",
             "gold": "The known correct label, when imported"}
    st.dataframe(table, hide_index=True, width="stretch", column_order=order,
                 row_height=WRAP_ROW_PX, height=wrapped_height(len(table)),
                 column_config={c: st.column_config.TextColumn(c, width=w, help=help_.get(c))
                                for c, w in fit.items()})
