"""Predictions: the student's labels page by page, with agreement and confusion."""
import json

import pandas as pd
import streamlit as st

from candist_core import charts
from candist_core.review_queue import send_to_review
from candist_core.store import PREDICTION_FILTERS, PREDICTION_ORDERS
from candist_core.tables import WRAP_ROW_PX, fitted_widths, shown_columns, wrapped_height
from views.common import current_reviewer, require_project

store, project = require_project("predictions")
st.title("Student labels")
if sent := st.session_state.pop("predictions_flash", None):
    # A toast, not a banner: a banner that vanished on the next tick moved the table under
    # the pointer (a walk ticked the row below the one it aimed at); the caption above the
    # table keeps counting the texts waiting.
    st.toast(sent)
run = store.latest_student_run(project.id)
if run is None:
    st.info("No finished student run yet: distill first.")
    st.stop()
labels = store.label_schema(project.id).names
AGREEMENT = {"any": "(any)",
             "disagrees_with_teacher": "differs from teacher's first choice",
             "disagrees_with_human": "differs from the human label",
             "outside_candidates": "outside teacher's candidates"}
AGREEMENT_HELP = ("Which texts to list. Differs from teacher's first choice: the "
                  "student's label is not the teacher's top label; it may still be one of "
                  "the teacher's other candidates. Differs from the human label: a reviewer "
                  "chose another label. Outside teacher's candidates: the student's label "
                  "is not in the teacher's candidate set at all (a likely teacher miss); "
                  "these texts also differ from the teacher's first choice.")
ORDER = {"confidence_ascending": "confidence ascending",
         "confidence_descending": "confidence descending", "id": "id"}
# The Agreement filter's names are the longest: its column is wider, the page number's
# narrower, so they show whole at 1280 px.
c1, c2, c3, c4 = st.columns([1, 1.6, 1, 0.7])
label = c1.selectbox("Student label", [None] + labels,
                     format_func=lambda l: "(any)" if l is None else l)
agreement = c2.selectbox("Agreement", list(PREDICTION_FILTERS), format_func=AGREEMENT.get,
                         help=AGREEMENT_HELP)
order = c3.selectbox("Sort by", list(PREDICTION_ORDERS), format_func=ORDER.get)
page_size = 50
total = store.count_predictions(run.id, label=label, agreement=agreement)
pages = max(1, -(-total // page_size))
page = c4.number_input(f"Page (of {pages})", 1, pages, 1)
rows = store.prediction_page(run.id, label=label, agreement=agreement, order=order,
                             limit=page_size, offset=(int(page) - 1) * page_size)
waiting = store.sent_to_review(project.id)
# The send button sits above the table, left of this count, always there (disabled until
# a row is ticked) and of a fixed width: below the table it was off-screen at 1280x800, and
# appearing with the first tick it moved what was under the pointer. On the left, because
# the table's toolbar pops up over its top right corner. It is drawn after the table (it
# needs the ticks), into this slot.
head = st.container(horizontal=True, vertical_alignment="center", wrap=False,
                    key="send-row")
send_slot = head.empty()
head.caption(f"{total} predictions match."
             + (f" {len(waiting)} text(s) sent to the review queue are waiting for a "
                f"decision ('sent to review' in the human column)." if waiting else ""))
table = pd.DataFrame(rows).fillna("")
COLUMNS = {
    "review": st.column_config.CheckboxColumn(
        "review", help="Tick texts, then press 'Send N to the review queue' above the table: "
                       "they come first on the Review page"),
    "sample_id": None,   # the store's row id: needed to send to review, never shown
    "id": st.column_config.TextColumn("id", width=60),
    "text": st.column_config.TextColumn("text", width=260),
    "student": st.column_config.TextColumn("student", width=110,
                                           help="The student's predicted label"),
    "confidence": st.column_config.ProgressColumn(
        "confidence", width=80, min_value=0, max_value=100, format="%.0f%%",
        help="The student's probability for its label (after a continuous update, "
             "calibrated: see the Distill page)"),
    "human": st.column_config.TextColumn("human", width=100,
                                         help="Your review decision, if any: a label, or "
                                              "(skipped); 'sent to review' while a text sent "
                                              "to the review queue waits for one"),
    # (no "teacher" column: its label is among the candidates)
    "teacher": None,
    "candidates": st.column_config.TextColumn(
        "candidates", width=120, help="The teacher's candidate set. Texts whose student "
                                      "label is not in it: Agreement, 'outside candidates'"),
    # (no "outside" column: the Agreement filter lists those texts; seven columns and a
    # readable text fit 1280 px)
    "outside_candidates": None,
}
if not table.empty:
    table.insert(0, "review", False)
    table["candidates"] = [", ".join(json.loads(c)) if c else "" for c in table["candidates"]]
    if waiting:
        pending = set(waiting)
        table["human"] = [h or ("sent to review" if sid in pending else "")
                          for h, sid in zip(table["human"], table["sample_id"])]
    table["outside_candidates"] = table["outside_candidates"].astype(bool)
    table["confidence"] = table["confidence"] * 100    # percent, as on Review
    # Columns with nothing to show yet (no review decision on this page) leave their room
    # to the text, which wraps over three lines; ids and labels stay whole.
    shown = shown_columns({c: table[c] for c in COLUMNS if COLUMNS[c] is not None},
                          keep=("review", "id", "text", "student", "confidence"))
    fit = fitted_widths({c: table[c] for c in shown}, fixed={"review": 80, "confidence": 80},
                        min_flex=150, whole=("id", "student"),
                        wraps=("candidates", "human"))
    for c in shown:
        COLUMNS[c]["width"] = fit[c]
    edited = st.data_editor(table, width="stretch", disabled=list(table.columns[1:]),
                            hide_index=True, column_config=COLUMNS,
                            column_order=shown, row_height=WRAP_ROW_PX,
                            height=wrapped_height(len(table)),
                            key=(editor := f"pred-{page}-{label}-{agreement}-{order}-"
                                           f"{st.session_state.get('pred_sends', 0)}"))
    chosen = edited[edited["review"]]["sample_id"].tolist()
else:
    editor, chosen = None, []
if send_slot.button(f"Send {len(chosen)} to the review queue" if chosen else
                    "Send to the review queue", key="send-to-review", type="primary",
                    disabled=not chosen, width=240,
                    help="Puts the ticked texts first on the Review page, for every reviewer, "
                         "until decided." if chosen else
                         "Tick texts in the table's 'review' column first: this sends them "
                         "to the front of the Review page's queue."):
    sent = send_to_review(store, project.id, [int(c) for c in chosen],
                          who=current_reviewer())
    # The ticks are cleared: a new editor (the browser kept the old one's ticks and
    # sent them again with the next tick, a walk found).
    st.session_state.pop(editor, None)
    st.session_state["pred_sends"] = st.session_state.get("pred_sends", 0) + 1
    st.session_state["predictions_flash"] = " ".join(filter(None, [
        f"Sent {len(sent)} text(s): they come first on the Review page (after any sent "
        f"earlier), for every reviewer, until decided." if sent else None,
        f"{len(chosen) - len(sent)} already decided (labelled or skipped) stay "
        f"decided: change them from Review's list of recent decisions."
        if len(sent) < len(chosen) else None]))
    st.rerun()
summary = store.prediction_summary(run.id)
st.subheader("Per class")
st.caption(f"Every text of student run #{run.id}: the filters above choose the table's rows "
           "only, not this table or the charts below.")
per_class = pd.DataFrame({"label": labels}).merge(
    pd.DataFrame(summary["per_class"], columns=["label", "predicted", "mean_confidence",
                                                "outside_candidates"]),
    on="label", how="left").fillna({"predicted": 0, "outside_candidates": 0})
per_class["mean_confidence"] = per_class["mean_confidence"] * 100
st.dataframe(per_class, width="stretch", hide_index=True, column_config={
    "predicted": st.column_config.NumberColumn(help="Texts the student gives this label"),
    "mean_confidence": st.column_config.NumberColumn(
        "mean confidence", format="%.0f%%", help="Its average probability on those texts"),
    "outside_candidates": st.column_config.NumberColumn(
        "outside candidates", help="Of those, texts where the teacher did not offer it")})
if summary["human"]:
    st.plotly_chart(charts.confusion_figure(summary["human"], labels,
                                            title="Student vs human decisions",
                                            reference="human decision"),
                    width="stretch")
if summary["gold"]:
    st.plotly_chart(charts.confusion_figure(summary["gold"], labels,
                                            title="Student vs gold labels",
                                            reference="gold label"), width="stretch")
