"""Predict: take a trained student home (a transformers model folder as a zip) or label a
new file with it. Nothing on this page changes the project."""
import time

import pandas as pd
import streamlit as st

from candist_core.importing import ImportOptions, read_table
from candist_core.metrics import student_run_metrics
from candist_core.model_dir import zip_bytes
from candist_core.predicting import PredictOptions, Predictor, predict_bytes
from candist_core.records import CandistError
from views.common import require_project

store, project = require_project("predict")
st.title("Label new files")
st.caption("The student is the small model trained on the Distill page. Here it labels texts "
           "that are not in the project, or leaves with you as a standard model folder. "
           "Nothing on this page changes the project.")

every_run = store.student_runs(project.id)
runs = [r for r in every_run if r.checkpoint and r.status in ("done", "cancelled")]
if not runs:
    st.info("No trained student in this project yet: train one on the Distill page first.")
    st.page_link("views/distill.py", label="Go to the Distill page")
    st.stop()


def describe(run) -> str:
    m = student_run_metrics(store, run)
    update = run.config.get("update_of")
    parts = [f"Run #{run.id}"] + (
        [f"update of #{update} with {run.config.get('human_labels', 0)} human labels"]
        if update else [run.method, f"best epoch {run.best_epoch} of {len(run.epochs)}"])
    if m["accuracy"] is not None:
        parts.append(f"{m['accuracy']:.1%} vs gold on the texts it trained on")
    return ", ".join(parts) + f" ({(run.finished or run.created)[:16].replace('T', ' ')})"


runs.sort(key=lambda r: r.id, reverse=True)
run = st.selectbox("Student", runs, format_func=describe,
                   help="The newest run comes first. 'Accuracy vs gold' is measured on this "
                        "project's texts that have a gold label; the student trained on "
                        "those texts (with the teacher's labels), so it is not a held-out "
                        "score.")


@st.cache_resource(max_entries=2)
def predictor(path: str) -> Predictor:
    return Predictor.from_dir(path)


st.subheader("Take the model home")
st.write("A standard transformers folder: config with the label names, weights "
         "(safetensors), tokenizer, a model card (README.md) and the ~100-line model class, "
         "because the student averages all token states, which no stock head does.")
st.code(f"""from transformers import pipeline
classify = pipeline("text-classification", model="run-{run.id}", trust_remote_code=True)
classify("a new text", top_k=None)""", language="python")
st.download_button("Download this student (zip)", lambda: zip_bytes(run.checkpoint),
                   file_name=f"{project.name}-student-run-{run.id}.zip",
                   mime="application/zip")

st.subheader("Label a file")
upload = st.file_uploader("Texts to label (CSV, JSONL or Parquet)",
                          type=["csv", "jsonl", "ndjson", "parquet", "pq"],
                          help="Every column is kept; the output adds label, confidence (the "
                               "student's probability for that label) and the top labels "
                               "with their probabilities.")
if upload is None:
    st.stop()
data = upload.getvalue()
try:
    preview, _ = read_table(data, options=ImportOptions(text_col=None), name=upload.name)
except CandistError as exc:
    st.error(str(exc))
    st.stop()
columns = list(preview.columns)
c1, c2, c3 = st.columns(3)
text_col = c1.selectbox("Text column", columns,
                        index=columns.index("text") if "text" in columns else 0)
FORMATS = {"csv": "CSV", "jsonl": "JSONL", "parquet": "Parquet"}
fmt = c2.radio("Output format", list(FORMATS), format_func=FORMATS.get, horizontal=True)
top_k = c3.number_input("Labels listed per text", 1, 20, 3,
                        help="How many of the most likely labels the output lists, with "
                             "their probabilities.")
st.caption(f"{len(preview)} rows in {upload.name}.")

key = (upload.name, upload.size, run.id, text_col, fmt, top_k)
if st.button(f"Label {len(preview)} texts", type="primary"):
    bar = st.progress(0.0, text="Loading the student...")
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        eta = elapsed / done * (total - done) if done else None
        bar.progress(done / total if total else 1.0,
                     text=f"{done}/{total} texts" + (f", about {eta:.0f} s left"
                                                     if eta is not None and done < total
                                                     else ""))

    try:
        out, summary = predict_bytes(
            predictor(run.checkpoint), data, name=upload.name, out_format=fmt,
            options=PredictOptions(text_col=text_col, top_k=int(top_k)), on_progress=progress)
    except CandistError as exc:
        bar.empty()
        st.error(str(exc))
        st.stop()
    bar.empty()
    st.session_state["predict_result"] = (key, out, summary)

result = st.session_state.get("predict_result")
if result and result[0] == key:
    _, out, summary = result
    st.success(f"Labelled {summary.rows} texts in {summary.seconds:.1f} s on {summary.device}"
               + (f"; {summary.empty_texts} empty texts left unlabeled"
                  if summary.empty_texts else "") + ".")
    for old, new in summary.renamed.items():
        st.caption(f"The file's own '{old}' column is kept as '{new}'.")
    counts = pd.DataFrame(summary.labels.most_common(), columns=["label", "texts"])
    left, right = st.columns([1, 3])
    left.dataframe(counts, hide_index=True, width="stretch")
    preview, _ = read_table(out, options=ImportOptions(text_col=None),
                            name=f"labelled.{fmt}")
    right.caption("The first 20 labelled rows:")
    right.dataframe(preview.head(20), hide_index=True, width="stretch",
                    column_config={text_col: st.column_config.TextColumn(width="large")})
    stem = upload.name.rsplit(".", 1)[0]
    st.download_button(f"Download the labelled {FORMATS[fmt]}", out,
                       file_name=f"{stem}-labelled.{fmt}", type="primary")
