"""Distill: train the student in the background, with an estimate before it starts, named
stages and a steady ETA while it runs, and its curves and accuracy after."""
from pathlib import Path

import pandas as pd
import streamlit as st

from candist_core import charts, continuous
from candist_core.distill import distill_project, fail_interrupted_runs
from candist_core.encoder import device_description, pick_device
from candist_core.metrics import student_run_metrics
from candist_core.model_dir import zip_bytes
from candist_core.progress import DistillProgress, estimate_distillation, timed_runs
from candist_core.records import CandistError
from candist_core.student import HEAD_INITS, METHODS, StudentConfig
from candist_core.tables import fitted_widths, shown_columns
from views.common import (kept_settings, registry, require_project, show_job,
                          show_quality)

store, project = require_project("distill")
st.title("Distill")
st.caption("Train a small, fast model (the student) on the teacher's candidate sets and your "
           "review decisions. Its predictions label every text the export gives no human "
           "label to, and rank the Review queue.")
show_quality(store, project)
key = f"distill:{project.id}"
job = registry().get(key)
# A run left 'running' by a server that was killed is marked failed, and said so.
fail_interrupted_runs(store, project.id)
latest = next(iter(store.student_runs(project.id)), None)
if latest and latest.status == "failed" and not (job and job.running):
    st.warning(f"Run #{latest.id} ({latest.method}) failed: {latest.error}")
d = StudentConfig()
kept, keep = kept_settings(store, "distill", project.id)
device = pick_device("auto")
st.caption(f"Device: {device_description(device)}")
c1, c2, c3 = st.columns(3)
METHOD_NAMES = {"candist": "CanDist (Distribution Refinery)",
                "sa": "Single-label distillation", "uniform": "Uniform over candidates"}
method = keep("method", c1.selectbox(
    "Method", METHODS, index=METHODS.index(kept.choice("method", METHODS, d.method)),
    format_func=lambda m: METHOD_NAMES.get(m, m),
    help="CanDist: learns from the whole candidate set and, epoch by epoch, shifts weight to "
         "the labels the student itself finds likely (recommended). Single-label: only the "
         "teacher's first label. Uniform: every candidate counts the same."))
epochs = keep("epochs", c2.number_input("Epochs", 1, 50,
                                        kept.number("epochs", 1, 50, d.epochs),
                                        help="Passes over all texts. More can help, each "
                                             "takes about as long as the first; the best "
                                             "epoch is kept."))
lr = keep("lr", c3.number_input("Learning rate", 1e-6, 1e-3,
                                kept.number("lr", 1e-6, 1e-3, d.lr),
                                format="%.6f", help="How big each training step is. The "
                                                    "default suits MiniLM."))
with st.expander("More settings"):
    a1, a2, a3, a4 = st.columns(4)
    batch_size = keep("batch_size", a1.number_input(
        "Batch size", 1, 256, kept.number("batch_size", 1, 256, d.batch_size),
                                 help="Texts per training step. Larger is faster on a GPU "
                                      "and needs more memory."))
    delta = keep("delta", a2.slider("delta (small-loss share)", 0.1, 0.9,
                                    kept.number("delta", 0.1, 0.9, d.delta),
                      help="Each epoch, among the texts whose student label is inside their "
                           "candidate set, this share per predicted label (those with the "
                           "smallest loss) gets a target sharpened towards the student's "
                           "favourite (the 'sharpened' curve of the training chart, from the "
                           "second epoch of candist)."))
    tau = keep("tau", a3.slider("tau (high confidence)", 0.5, 1.0,
                                kept.number("tau", 0.5, 1.0, d.tau),
                    help="A text whose student label is outside its candidate set gets "
                         "that label as its target when the student gives it more than this "
                         "probability (the 'trusted outside the set' curve of the training "
                         "chart, from the second epoch of candist)."))
    gamma = keep("gamma", a4.slider("gamma (sharpening)", 0.5, 1.0,
                                    kept.number("gamma", 0.5, 1.0, d.gamma),
                      help="How strongly the targets inside a candidate set are sharpened "
                           "towards the student's favourite: 1 keeps them as they are, "
                           "lower sharpens more."))
    model = keep("model", st.text_input("Model directory (empty: all-MiniLM-L6-v2)",
                                        value=kept.text("model"),
                          help="A local Hugging Face encoder folder; empty uses the bundled "
                               "all-MiniLM-L6-v2 (small, runs on a laptop)."))
    head_init = keep("head_init", st.selectbox(
        "Classifier head starts", HEAD_INITS,
        index=HEAD_INITS.index(kept.choice("head_init", HEAD_INITS, d.head_init)),
        format_func=lambda h: {
            "auto": f"auto (prototypes under {d.prototypes_below:g} samples a class, "
                    "else random)",
            "random": "random",
            "prototypes": "at the class prototypes of the candidate sets"}[h],
        help="Where the final layer that maps a text to a label starts. Prototypes: at the "
             "average embedding of each label's texts, which learns far faster from few "
             "texts per label; random needs many."))
config = StudentConfig(method=method, epochs=int(epochs), lr=float(lr),
                       batch_size=int(batch_size), delta=delta, tau=tau, gamma=gamma,
                       model=model or None, head_init=head_init)
texts = store.count_samples(project.id)
estimate = estimate_distillation(timed_runs(store), texts=texts, epochs=int(epochs),
                                 device=device.type,
                                 mean_chars=store.mean_text_chars(project.id))
if not (job and job.running):
    st.info(f"Estimate for {texts} texts x {int(epochs)} epoch(s): {estimate.describe()}.")
if st.button("Start distillation", type="primary", disabled=bool(job and job.running)):
    def work(j):
        tracker = DistillProgress(epochs=config.epochs, estimate=estimate.seconds)
        j.stats = {"progress": tracker}

        def on_epoch(m):
            tracker.on_epoch(m)
            j.history.append(m)

        def on_step(done, total):
            tracker.on_step(done, total)
            j.progress(done, total)
        return distill_project(store, project.id, config, on_epoch=on_epoch,
                               on_step=on_step, cancel=j.cancel)
    try:
        job = registry().start(key, "Distillation", work)
    except CandistError as exc:
        st.error(str(exc))
show_job(job, unit=f"training steps (a step learns from {int(batch_size)} texts)")

st.subheader("Continuous student")
st.caption("Between full distillations the student follows the review: after every N new "
           "human labels it is updated in the background from the latest student (a few "
           "seconds: about 7 s from the last decision to a re-ranked queue at 2,000 texts on "
           "a 2-core laptop), and the Review queue is re-ranked by it.")
u1, u2 = st.columns([2, 1], vertical_alignment="bottom")
every = u1.number_input(
    "Update the student every N human labels", 0, 100_000, store.update_every(project.id),
    step=10, help="After this many new human labels (from anyone on the team; skips do not "
                  "count) the student is updated on its own: it starts from the latest "
                  "student's classifier and relearns from the teacher's candidate sets with "
                  "every human label fixed, on the text embeddings of the latest full "
                  "distillation. 0 turns automatic updates off (Update now still works).")
if int(every) != store.update_every(project.id):
    store.set_update_every(project.id, int(every))
teaching = store.teach_on_update(project.id)
if st.checkbox("Re-teach the offline teacher with the human labels before each update",
               teaching, help=continuous.TEACH_HELP) != teaching:
    store.set_teach_on_update(project.id, not teaching)
fresh = continuous.read_freshness(store, registry(), project.id)
update_job = registry().get(continuous.update_key(store, project.id))
why_not = ("No student to update yet: start a full distillation above first."
           if fresh.student_run is None
           else "An update is running." if fresh.updating is not None else None)
if u2.button("Update now", disabled=why_not is not None,
             help=why_not or "Update the student now with every human label so far (seconds)."):
    try:
        update_job = continuous.start_update(store, registry(), project.id)
        st.toast("Student update started: its steps show below the button.")
    except CandistError as exc:
        st.error(str(exc))
st.caption(why_not if fresh.student_run is None else continuous.describe(fresh),
           help=continuous.HELP)
show_job(update_job, unit="steps")


@st.fragment(run_every=2.0 if job and job.running else None)
def curves() -> None:
    epochs_seen = job.history if job and job.history else None
    kept = None
    if epochs_seen is None:     # the curves of a full distillation, not of an update
        run = continuous.latest_full_run(store, project.id)
        epochs_seen, kept = (run.epochs, run.best_epoch) if run else (None, None)
    if epochs_seen:
        st.plotly_chart(charts.training_figure(epochs_seen, kept=kept), width="stretch")
        st.caption(charts.training_caption(epochs_seen))


curves()
done = store.latest_student_run(project.id)
if done is not None:
    m = student_run_metrics(store, done)
    st.caption(f"The latest student: student run #{done.id}, "
               f"{continuous.run_kind(done.config)}. The chart above is the "
               f"latest full distillation's (an update has no epochs to chart).")
    q1, q2, q3 = st.columns(3)
    q1.metric("Accuracy vs gold labels",
              f"{m['accuracy']:.1%}" if m["accuracy"] is not None else "no gold",
              help=f"Share of the {m['n_gold']} texts with an imported gold label that the "
                   f"latest student labels correctly. It trained on those texts (with the "
                   f"teacher's candidates, never the gold labels), so this is not a held-out "
                   f"score; the audit (Review page) is.")
    trained, since = m["human_labels_trained"], m["human_labels"] - m["human_labels_trained"]
    if since:      # labels it never saw: the honest figure
        q2.metric(f"Agrees with your {since} newer labels",
                  f"{m['human_accuracy_since']:.1%}",
                  help=f"Your labels made after this student was trained: it never saw them "
                       f"(the queue chose them, so they are the harder texts). On all "
                       f"{m['human_labels']}, including the {trained} it trained on: "
                       f"{m['human_accuracy']:.0%}.")
    else:
        q2.metric("Agrees with your labels (seen in training)",
                  f"{m['human_accuracy']:.1%}" if m["human_accuracy"] is not None else "-",
                  help=f"Share of your {m['human_labels']} review labels that the student "
                       f"also predicts. It trained on all of them, which flatters it; once "
                       f"you label more, this shows the agreement on the labels it has not "
                       f"seen.")
    full = continuous.latest_full_run(store, project.id)
    q3.metric("Best epoch (full run)", (full.best_epoch if full else None) or "-",
              help="The epoch whose weights were kept (highest selection score), in the "
                   "latest full distillation.")
    saved = done if done.checkpoint else full
    if saved is not done and saved is not None and saved.checkpoint:
        st.caption("The latest student is an update whose model folder is not written "
                   "yet (or could not be: see the disk), so the download and the Label new "
                   "files page use the latest full distillation.")
    elif saved is done and "update_of" in done.config:
        st.caption("The latest student is an update: the full distillation's encoder with "
                   "the classifier retrained on your decisions, saved as a model folder "
                   "of its own (only the newest update keeps one). "
                   + continuous.calibration_text(done.epochs))
    if saved is not None and saved.checkpoint and Path(saved.checkpoint).is_dir():
        d1, d2 = st.columns([1, 2])
        d1.download_button("Download this student (zip)", lambda: zip_bytes(saved.checkpoint),
                           file_name=f"{project.name}-student.zip", mime="application/zip",
                           help="A standard transformers model folder with a model card: "
                                "load it with pipeline('text-classification', model=FOLDER, "
                                "trust_remote_code=True).")
        with d2:
            st.page_link("views/predict.py", label="Label new files with it")
runs = store.student_runs(project.id)
if runs:
    st.subheader("Runs")
    table = pd.DataFrame([{"run": f"#{r.id}", "kind": continuous.run_kind(r.config),
                           "method": r.method, "status": r.status, "epochs": len(r.epochs),
                           "best epoch": str(r.best_epoch or "") if "update_of" not in r.config
                           else "", "error": r.error or ""} for r in runs])
    shown = shown_columns({c: table[c] for c in table.columns},
                          keep=("run", "kind", "method", "status"))
    fit = fitted_widths({c: table[c] for c in shown}, flex="kind", min_flex=300,
                        whole=("run", "status"))
    st.dataframe(table, width="stretch", hide_index=True, column_order=shown,
                 column_config={c: st.column_config.TextColumn(c, width=w)
                                for c, w in fit.items()})
