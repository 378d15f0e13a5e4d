"""Export: choose the label policy, threshold and format, preview, download the labels."""
import pandas as pd
import streamlit as st

from candist_core.agreement import open_conflicts
from candist_core.exporting import ANNOTATORS, ExportOptions, export_bytes, export_preview
from candist_core.records import CandistError
from candist_core.reports import export_counts, quality_estimate
from candist_core.tables import WRAP_ROW_PX, fitted_widths, listed, wrapped_height
from views.common import kept_settings, require_project, show_quality

store, project = require_project("export")
st.title("Export")
show_quality(store, project)
disputed = open_conflicts(store, project.id)
if disputed:
    st.warning(f"{len(disputed)} text(s) have labels from two reviewers that disagree and "
               "are not resolved yet: the export gives each the label decided last. "
               "Resolve them on the Agreement page first.", icon=":material/warning:")
    st.page_link("views/agreement.py", label="Resolve conflicts on the Agreement page",
                 icon=":material/arrow_forward:")
policies = {"Human, then student, then teacher": ("human", "student", "teacher"),
            "Human, then teacher": ("human", "teacher"),
            "Human only": ("human",)}
kept, keep = kept_settings(store, "export", project.id)
policy = keep("policy", st.selectbox(
    "Label policy", list(policies), index=list(policies).index(kept.choice(
        "policy", policies, next(iter(policies)))),
    help="Which label each text gets: the first source in this order that has one. Human: "
         "your review decisions; student: the distilled model's prediction; teacher: the "
         "first label of its candidate set. A skipped text has no human label: it gets the "
         "next source's label (or none with 'Human only')."))
c1, c2 = st.columns(2)
# In percent, as the Review and Student labels pages show a probability.
threshold = keep("min_confidence_pct", c1.slider(
    "Minimum confidence", 0, 100, kept.number("min_confidence_pct", 0, 100, 0), 5,
    format="%d%%",
    help="Student or teacher labels less sure than this (their probability, as the Review "
         "and Student labels pages show it) are not used. Human labels are always kept.")) / 100
BELOW = ["blank", "drop"]
below = keep("below", c2.radio(
    "Rows below it", BELOW, horizontal=True,
    index=BELOW.index(kept.choice("below", BELOW, "blank")),
    format_func={"blank": "keep them unlabeled", "drop": "leave them out"}.get))
try:
    options = ExportOptions(sources=policies[policy], min_confidence=threshold, below=below)
except CandistError as exc:
    st.error(str(exc))
    st.stop()
summary, by_label = export_counts(store, project.id, options=options)
counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary.sources.items()))
left_out = store.count_samples(project.id) - summary.rows
st.write(f"{summary.rows} rows - label sources {counts or 'none'}."
         + (f" {left_out} text(s) left out: no label from these sources at "
            f"{threshold:.0%} confidence or more."
            if left_out > 0 and below == "drop" else ""))
s1, s2 = st.columns(2)
s1.dataframe(pd.DataFrame([{"label": k or "(no label)", "rows": v}
                           for k, v in by_label.most_common()]),
             hide_index=True, width="stretch")
s2.dataframe(pd.DataFrame([{"label source": k, "rows": v}
                           for k, v in sorted(summary.sources.items())]),
             hide_index=True, width="stretch")
quality = quality_estimate(store, project.id)
if quality is not None:
    parts = []
    if quality["gold_accuracy"] is not None:
        parts.append(f"{quality['gold_accuracy']:.1%} accuracy vs the imported gold labels")
    if quality["human_accuracy"] is not None:
        parts.append(f"{quality['human_accuracy']:.1%} on held-out human decisions")
    elif quality["selection_score"] is not None and quality["validation"] == "candidates":
        held = f" {quality['selection_n']}" if quality.get("selection_n") else ""
        parts.append(f"{quality['selection_score']:.1%} of{held} held-back texts labelled "
                     f"inside the teacher's candidate set")
    if parts:
        which = (f"student run #{quality['run_id']}, a continuous update" if quality["update"]
                 else f"student run #{quality['run_id']}, best epoch {quality['best_epoch']}")
        st.caption(f"Quality estimate of the student labels ({which}): "
                   + "; ".join(parts) + ".")
FORMATS = {"csv": ("CSV (spreadsheets; formula cells neutralised)", "text/csv"),
           "jsonl": ("JSONL (one JSON object a line: Prodigy, Argilla)", "application/jsonl"),
           "parquet": ("Parquet (pandas, Hugging Face datasets; the candidates as a list)",
                       "application/vnd.apache.parquet")}
fmt = keep("fmt", st.radio("Format", list(FORMATS), horizontal=True,
                           index=list(FORMATS).index(kept.choice("fmt", FORMATS, "csv")),
                           format_func=lambda f: FORMATS[f][0]))
preview = pd.DataFrame(export_preview(store, project.id, options=options))
# What a reader checks here: the text (wrapped, three lines a row), its label, where that
# comes from and how sure it is. The file's other columns would squeeze the text to a few
# words at 1280 px: they are a tick away.
MAIN = ["id", "text", "label", "label_source", "confidence", "candidates"]
extra = [c for c in preview.columns if c not in MAIN]
every = keep("every", st.toggle(
    "Show every column of the file", value=kept.choice("every", (True, False), False),
    help="The preview shows the columns that say which label each text gets; the file "
         f"also has {listed(extra)}.")) if extra else False
shown = [c for c in preview.columns if every or c in MAIN]
st.caption(f"The first {len(preview)} rows of the file"
           + ("" if every or not extra else f" (without its {listed(extra)} "
                                            f"column{'s' if len(extra) > 1 else ''})")
           + ". Every format has the same columns (CSV writes a candidate set as a JSON "
             "list); hover a cell to read it whole"
           + ("; scroll the table sideways for the last columns." if every else "."))
if "candidates" in preview:   # a list in JSONL and Parquet; words that wrap, here
    preview["candidates"] = [", ".join(c) if isinstance(c, list) else c
                             for c in preview["candidates"]]
# The ids and labels are whole, the candidates wrap between labels, the text takes what is
# left and wraps (with every column, it keeps 220 px and the table scrolls sideways).
width = fitted_widths({c: preview[c] for c in shown}, fixed={"confidence": 80},
                      min_flex=220, whole=("id", "label", "gold"), wraps=("candidates",))
HELP = {"label_source": "Where the label comes from: human (a review or audit decision), "
                        "student or teacher",
        "confidence": "The probability of the exported label, 0 to 1 as the file writes it "
                      "(1 for a human label)",
        "candidates": "The teacher's candidate set",
        "gold": "The label imported as known correct (only to measure quality)",
        ANNOTATORS: "How many people labelled the text (2 on a team's overlap texts)"}
KIND = {"confidence": lambda c, **k: st.column_config.NumberColumn(c, format="%.4f", **k),
        ANNOTATORS: st.column_config.NumberColumn}
st.dataframe(preview, hide_index=True, width="stretch", column_order=shown,
             row_height=WRAP_ROW_PX, height=wrapped_height(len(preview)), column_config={
                 c: KIND.get(c, st.column_config.TextColumn)(c, width=width[c],
                                                             help=HELP.get(c))
                 for c in width})
# The whole file is built only when the button is pressed.
st.download_button(f"Download cleaned {fmt.upper() if fmt != 'parquet' else 'Parquet'}",
                   lambda: export_bytes(store, project.id, fmt=fmt, options=options),
                   file_name=f"{project.name}-cleaned.{fmt}", mime=FORMATS[fmt][1],
                   type="primary")
