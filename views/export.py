"""Export: choose the label policy, threshold and format, preview, download the labels."""
import pandas as pd
import streamlit as st

from candist_core.agreement import open_conflicts
from candist_core.exporting import ANNOTATORS, ExportOptions, export_bytes, export_preview
from candist_core.records import CandistError
from candist_core.reports import export_overview, quality_estimate
from candist_core.tables import (PAGE_WIDTH, WRAP_ROW_PX, fitted_widths, listed,
                                 wrapped_height)
from views.common import kept_settings, require_project, seeded, show_quality

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
    "Label policy", list(policies),
    key=seeded("export", project.id, "policy",
               kept.choice("policy", policies, next(iter(policies)))),
    help="Which label each text gets: the first source in this order that has one. Human: "
         "your review decisions; student: the distilled model's prediction; teacher: the "
         "first label of its candidate set. A skipped text has no human label: it gets the "
         "next source's label (or none with 'Human only')."))
c1, c2 = st.columns(2)
# In percent, as the Review and Student labels pages show a probability. The defaults keep
# every text with its label, as the `export` command's do (--min-confidence 0, --below
# blank): a first visit that left rows out of the file without a word lost 5 texts.
threshold = keep("min_confidence_pct", c1.slider(
    "Minimum confidence", 0, 100, step=5, format="%d%%",
    key=seeded("export", project.id, "min_confidence_pct",
               kept.number("min_confidence_pct", 0, 100, 0)),
    help="Student or teacher labels less sure than this (their probability, as the Review "
         "and Student labels pages show it) are not used. Human labels are always kept.")) / 100
BELOW = {"blank": "keep them, label empty", "drop": "leave them out"}
below = keep("below", c2.radio(
    "Rows below it", list(BELOW), horizontal=True, format_func=BELOW.get,
    key=seeded("export", project.id, "below", kept.choice("below", BELOW, "blank")),
    help="Keep them (the default): every text is in the file; a text whose label is under "
         "the minimum confidence has an empty label and label_source 'none'. Leave them "
         "out: the file has only the texts that get a label."))
try:
    options = ExportOptions(sources=policies[policy], min_confidence=threshold, below=below)
except CandistError as exc:
    st.error(str(exc))
    st.stop()
summary, by_label, check = export_overview(store, project.id, options=options)
counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary.sources.items()))
left_out = store.count_samples(project.id) - summary.rows
unlabeled = summary.sources.get("none", 0)
st.write(f"{summary.rows} rows - label sources {counts or 'none'}."
         + (f" {left_out} text(s) left out: no label from these sources at "
            f"{threshold:.0%} confidence or more."
            if left_out > 0 and below == "drop" else "")
         + (f" Every text is in the file; the {unlabeled} with no label from these sources "
            f"at {threshold:.0%} confidence or more have an empty label."
            if unlabeled and below == "blank" and threshold > 0 else ""))
s1, s2 = st.columns(2)
s1.dataframe(pd.DataFrame([{"label": k or "(no label)", "rows": v}
                           for k, v in by_label.most_common()]),
             hide_index=True, width="stretch")
s2.dataframe(pd.DataFrame([{"label source": k, "rows": v}
                           for k, v in sorted(summary.sources.items())]),
             hide_index=True, width="stretch")
# The file as configured, against the gold labels: it follows the policy and the minimum
# confidence, where the student's own figure below describes the model, not the file.
if check is None:
    st.caption("How right this file's labels are cannot be measured here yet: that needs "
               "gold labels (a gold label column imported on the Data page) or an audit "
               "(Review page, Audit mode: texts drawn at random and labelled blind; its "
               "estimate then shows at the top of this page).")
elif check.accuracy is None:
    st.caption(f"How right this file's labels are: not measured, no exported row has both "
               f"a gold label and a label at these settings ({check.with_gold} row(s) with a "
               f"gold label, none labelled).")
else:
    right = check.accuracy
    st.markdown(
        f"**This file's labels vs the gold labels: {right.value:.1%} right** (95% interval "
        f"{right.low:.1%}-{right.high:.1%}), measured on the {right.n} exported row(s) "
        f"that have both a gold label and a label.",
        help="The labels this file holds with the policy and minimum confidence above, "
             "compared with the labels imported as known correct. The interval is a 95% "
             "Wilson interval: what the share of right labels may be for texts like these. It "
             "describes this file's labels, not how the student would do on new texts.")
    notes = [f"{check.human} of them carry a person's label, which counts too "
             f"({check.human_right} agree with the gold label)" if check.human else
             "no row has a person's label yet (they would count too)"]
    if check.with_gold > check.judged:
        notes.append(f"{check.with_gold - check.judged} row(s) with a gold label have no "
                     f"label at these settings and are not counted")
    if check.rows > check.with_gold:
        notes.append(f"{check.rows - check.with_gold} row(s) have no gold label")
    st.caption("It follows the settings above: " + "; ".join(notes) + ".")
quality = quality_estimate(store, project.id)
if quality is not None:
    parts = []
    if quality["gold_accuracy"] is not None:
        parts.append(f"{quality['gold_accuracy']:.1%} accuracy vs the imported gold labels, "
                     f"measured on every text with a gold label, nearly all of which the "
                     f"student trained on (all but a small held-back share), so it is "
                     f"optimistic, and it does not follow the settings above")
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
                           key=seeded("export", project.id, "fmt",
                                      kept.choice("fmt", FORMATS, "csv")),
                           format_func=lambda f: FORMATS[f][0]))
preview = pd.DataFrame(export_preview(store, project.id, options=options))
if "candidates" in preview:   # a list in JSONL and Parquet; words that wrap, here
    preview["candidates"] = [", ".join(c) if isinstance(c, list) else c
                             for c in preview["candidates"]]


def widths(columns: list[str]) -> dict[str, int]:
    """The ids and labels whole, the candidates wrapping between labels, the text taking
    what is left (at least 220 px) and wrapping."""
    return fitted_widths({c: preview[c] for c in columns}, fixed={"confidence": 80},
                         min_flex=220, whole=("id", "label", "gold"), wraps=("candidates",))


# What a reader checks here: the text (wrapped, three lines a row), its label, where that
# comes from and how sure it is; then, as long as they fit whole beside the text at 1280 px,
# the gold label (what the figure above compares with), the candidates and the annotators.
# At 1280 px with long label names ("technical_problem") all of them cut the gold labels to
# "technica..." and pushed the annotators out of sight: the rest are a tick away.
MAIN = ["id", "text", "label", "label_source", "confidence"]
main = [c for c in MAIN if c in preview]
for column in ("gold", "candidates", ANNOTATORS):
    trial = [c for c in preview.columns if c in main or c == column]
    if column in preview and sum(widths(trial).values()) <= PAGE_WIDTH:
        main = trial
extra = [c for c in preview.columns if c not in main]
every = keep("every", st.toggle(
    "Show every column of the file",
    key=seeded("export", project.id, "every", kept.choice("every", (True, False), False)),
    help="The preview shows the columns that fit whole beside the text; the file also has "
         f"{listed(extra)}.")) if extra else False
shown = list(preview.columns) if every else main
st.caption(f"The first {len(preview)} rows of the file"
           + ("" if every or not extra else f" (without its {listed(extra)} "
                                            f"column{'s' if len(extra) > 1 else ''})")
           + ". Every format has the same columns (CSV writes a candidate set as a JSON "
             "list); hover a cell to read it whole"
           + ("; scroll the table sideways for the last columns." if every else "."))
width = widths(shown)
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
