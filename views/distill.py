"""Distill: train the student in the background, with an estimate before it starts, named
stages and a steady ETA while it runs, and its curves and accuracy after."""
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from candist_core import charts, continuous
from candist_core.distill import distill_project, fail_interrupted_runs
from candist_core.encoder import device_description, pick_device
from candist_core.metrics import student_run_metrics
from candist_core.model_dir import zip_bytes
from candist_core.progress import (DistillProgress, estimate_distillation, format_duration,
                                   machine_busy, seconds_between, timed_runs)
from candist_core.records import CandistError
from candist_core.student import HEAD_INITS, METHODS, StudentConfig
from candist_core.tables import WRAP_ROW_PX, fitted_widths, shown_columns, wrapped_height
from views.common import (kept_settings, registry, require_project, restore_defaults, seeded,
                          show_job, show_quality)

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
    "Method", METHODS, key=seeded("distill", project.id, "method",
                                  kept.choice("method", METHODS, d.method)),
    format_func=lambda m: METHOD_NAMES.get(m, m),
    help="CanDist: learns from the whole candidate set and, epoch by epoch, shifts weight to "
         "the labels the student itself finds likely (recommended). Single-label: only the "
         "teacher's first label. Uniform: every candidate counts the same."))
epochs = keep("epochs", c2.number_input("Epochs", 1, 50, key=seeded(
                                            "distill", project.id, "epochs",
                                            kept.number("epochs", 1, 50, d.epochs)),
                                        help="Passes over all texts. More can help, each "
                                             "takes about as long as the first; the best "
                                             "epoch is kept."))
lr = keep("lr", c3.number_input("Learning rate", 1e-6, 1e-3, key=seeded(
                                    "distill", project.id, "lr",
                                    kept.number("lr", 1e-6, 1e-3, d.lr)),
                                step=1e-5, format="%.6f",
                                help="How big each training step is. The default suits "
                                     "MiniLM; the +/- buttons move it by 0.00001."))
with st.expander("More settings"):
    a1, a2, a3, a4 = st.columns(4)
    batch_size = keep("batch_size", a1.number_input(
        "Batch size", 1, 256, key=seeded("distill", project.id, "batch_size",
                                         kept.number("batch_size", 1, 256, d.batch_size)),
                                 help="Texts per training step. Larger is faster on a GPU "
                                      "and needs more memory."))
    delta = keep("delta", a2.slider("delta (small-loss share)", 0.1, 0.9, key=seeded(
                                        "distill", project.id, "delta",
                                        kept.number("delta", 0.1, 0.9, d.delta)),
                      help="Each epoch, among the texts whose student label is inside their "
                           "candidate set, this share per predicted label (those with the "
                           "smallest loss) gets a target sharpened towards the student's "
                           "favourite (the 'sharpened' curve of the training chart, from the "
                           "second epoch of candist)."))
    tau = keep("tau", a3.slider("tau (high confidence)", 0.5, 1.0, key=seeded(
                                    "distill", project.id, "tau",
                                    kept.number("tau", 0.5, 1.0, d.tau)),
                    help="A text whose student label is outside its candidate set gets "
                         "that label as its target when the student gives it more than this "
                         "probability (the 'trusted outside the set' curve of the training "
                         "chart, from the second epoch of candist)."))
    gamma = keep("gamma", a4.slider("gamma (sharpening)", 0.5, 1.0, key=seeded(
                                        "distill", project.id, "gamma",
                                        kept.number("gamma", 0.5, 1.0, d.gamma)),
                      help="How strongly the targets inside a candidate set are sharpened "
                           "towards the student's favourite: 1 keeps them as they are, "
                           "lower sharpens more."))
    model = keep("model", st.text_input("Model directory (empty: all-MiniLM-L6-v2)",
                                        key=seeded("distill", project.id, "model",
                                                   kept.text("model")),
                          help="A local Hugging Face encoder folder; empty uses the bundled "
                               "all-MiniLM-L6-v2 (small, runs on a laptop)."))
    # Remembered per method: the default differs (StudentConfig.extra).
    extra_name = f"extra_epochs_{method}"
    extra_epochs = keep(extra_name, st.number_input(
        "Extra epochs while the labels still change", 0, 50, key=seeded(
            "distill", project.id, extra_name,
            kept.number(extra_name, 0, 50, StudentConfig(method=method).extra)),
        help=f"If the last planned epoch still changed at least {d.settled:.0%} of the "
             "student's labels from the epoch before, the run has not settled: it goes on, "
             "half the planned epochs at a time, up to this many epochs more (0: never). As "
             "always, the epoch kept is the one with the best selection score (how often "
             "the student's label is among the teacher's candidates on held-back texts). "
             "Some data sets need more than the planned epochs. CanDist and Uniform learn "
             "from whole candidate sets and do not copy the teacher's wrong labels when they "
             "train longer: default 4. "
             "Single-label distillation does copy them, and its selection score then favours "
             "those later, worse epochs: default 0."))
    head_init = keep("head_init", st.selectbox(
        "Classifier head starts", HEAD_INITS,
        key=seeded("distill", project.id, "head_init",
                   kept.choice("head_init", HEAD_INITS, d.head_init)),
        format_func=lambda h: {
            "auto": f"auto (prototypes under {d.prototypes_below:g} samples a label or "
                    "with small candidate sets, else random)",
            "random": "random",
            "prototypes": "at the class prototypes of the candidate sets"}[h],
        help="Where the final layer that maps a text to a label starts. Prototypes: at the "
             "average embedding of each label's texts, which learns far faster from few "
             "texts per label; random needs many. Auto picks prototypes when there are few "
             "texts per label, or (CanDist and Uniform) when the candidate sets are small "
             "enough that each label's average is mostly its own texts; with large sets "
             "the averages blur together and random does better."))
    st.button("Restore the default settings", on_click=restore_defaults,
              args=(store, "distill", project.id),
              help="Every setting of this page back to the recommended value; the project "
                   "remembers the settings you change until you press this.")
config = StudentConfig(method=method, epochs=int(epochs), lr=float(lr),
                       batch_size=int(batch_size), delta=delta, tau=tau, gamma=gamma,
                       model=model or None, head_init=head_init,
                       extra_epochs=int(extra_epochs))
texts = store.count_samples(project.id)
timed, mean_chars = timed_runs(store), store.mean_text_chars(project.id)
# Read while nothing trains here, then kept: during a run the load is the run itself (a walk
# saw the estimate grow from "1.4x slower" to "1.5x" as it trained).
if timed:
    busy = 1.0
elif "distill-busy" in st.session_state and (
        job is not None and job.running
        or time.monotonic() - st.session_state.get("distill-busy-at", 0.0) < 20):
    # read once before a run, and at most every 20 s between renders (it samples 0.3 s)
    busy = st.session_state["distill-busy"]
else:
    busy = st.session_state["distill-busy"] = machine_busy(device.type)
    st.session_state["distill-busy-at"] = time.monotonic()
estimate = estimate_distillation(timed, texts=texts, epochs=int(epochs), device=device.type,
                                 mean_chars=mean_chars, busy=busy)
longest = estimate_distillation(timed, texts=texts, epochs=int(epochs) + int(extra_epochs),
                                device=device.type, mean_chars=mean_chars, busy=busy)
START_ERROR = f"distill-start-error-{project.id}"


def start_distillation(settings: StudentConfig, expected: float) -> None:
    """Start the run in the background and draw the page again at once, so that the whole
    page, the button included, sees it going: drawn on from the click, the button stayed
    enabled for the whole run, and the page jumped when a later click caught up with it.
    (Not an ``on_click`` callback: its settings would be those drawn before the click, not
    an Epochs value typed just before it.)"""
    def work(j):
        tracker = DistillProgress(epochs=settings.epochs, estimate=expected)
        j.stats = {"progress": tracker}

        def on_epoch(m):
            tracker.on_epoch(m)
            j.history.append(m)

        def on_step(done, total):
            tracker.on_step(done, total)
            j.progress(done, total)
        return distill_project(store, project.id, settings, on_epoch=on_epoch,
                               on_step=on_step, cancel=j.cancel)
    try:
        registry().start(key, "Distillation", work)
    except CandistError as exc:
        st.session_state[START_ERROR] = str(exc)
    st.rerun()


running = bool(job and job.running)
# Nothing to learn from: say so before a click, with the way there (a walk pressed Start
# and only then read the command-line advice of the error).
untaught = store.latest_teacher_run(project.id) is None and not any(
    d.action == "label" for d in store.current_decisions(project.id).values())
if untaught:
    st.warning("Nothing to learn from yet: the student learns from the teacher's candidate "
               "labels (or from your review decisions). Annotate the texts first.")
    st.page_link("views/annotate.py", label="Annotate the texts (Annotate page)",
                 icon=":material/arrow_forward:", query_params={"project": project.name})
# The estimate stays while a run goes, so nothing below it moves when the run starts; a
# project with nothing to learn from gets none (a walk read "about 49 s" above a greyed
# Start button).
if not untaught:
    st.info(f"Estimate for {texts} texts x {int(epochs)} "
            f"epoch{'' if int(epochs) == 1 else 's'}: {estimate.describe()}."
            + (f" If the labels have not settled by then, up to "
               f"{int(epochs) + int(extra_epochs)} epochs: about "
               f"{format_duration(longest.seconds)}." if extra_epochs else ""))
if st.button("Start distillation", type="primary", disabled=running or untaught,
             help="A distillation is running: its progress is below. Wait for it to end, "
                  "or stop it with Cancel under the progress bar, to start another."
             if running else "Nothing to learn from yet: annotate the texts first."
             if untaught else "Train a new student with these settings, in the background: "
                              "you may leave this page meanwhile."):
    start_distillation(config, estimate.seconds)
if start_error := st.session_state.pop(START_ERROR, None):
    st.error(start_error)
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


@st.fragment(run_every=2.0 if running else None)
def curves() -> None:
    if running and not job.running:
        # The run has just ended: draw the whole page again, so that the estimate, the
        # figures and the runs table count it, not only this chart.
        st.rerun(scope="app")
    if running and job.running:
        if not job.history:
            st.caption("The training chart of the run under way appears after its first "
                       "epoch.")
            return
        epochs_seen, kept, whose = list(job.history), None, "the run under way"
    else:        # the curves of the latest full distillation, never of an update
        run = continuous.latest_full_run(store, project.id)
        if run is None or not run.epochs:
            return
        epochs_seen, kept, whose = run.epochs, run.best_epoch, f"student run #{run.id}"
    st.markdown(f"**Training of {whose}**" + (f" (the dotted line: epoch {kept}, whose "
                                              f"weights were kept)" if kept else ""))
    scores = charts.score_figure(epochs_seen, kept)
    left, right = st.columns(2) if scores is not None else (st.container(), None)
    left.plotly_chart(charts.loss_figure(epochs_seen, kept), width="stretch")
    if right is not None:
        right.plotly_chart(scores, width="stretch")
    if not charts.scored(epochs_seen):
        st.caption("No held-back texts to score the epochs on: the last epoch is kept.")
    st.caption(charts.training_caption(charts.charted_epochs(epochs_seen)))


curves()
done = store.latest_student_run(project.id)
if done is not None:
    m = student_run_metrics(store, done)
    went_on = continuous.extension_text(done.config, done.epochs)
    st.caption(f"The latest student: student run #{done.id}, "
               f"{continuous.run_kind(done.config)}."
               + (" The chart above is of the latest full distillation: an update has "
                  "no epochs to chart." if "update_of" in done.config else "")
               + (f" {went_on}" if went_on else ""))
    q1, q2, q3 = st.columns(3)
    q1.metric("Accuracy vs gold labels",
              f"{m['accuracy']:.1%}" if m["accuracy"] is not None else "no gold",
              help=f"Share of the {m['n_gold']} texts with an imported gold label that the "
                   f"latest student labels correctly. It trained on nearly all of them "
                   f"(all but a small held-back share; with the teacher's candidates, never "
                   f"the gold labels), so this is not a held-out score; the audit (Review "
                   f"page) is.")
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
        # centred: the link sat higher than the button and read as plain text (a walk)
        d1, d2 = st.columns([1, 2], vertical_alignment="center")
        d1.download_button("Download this student (zip)", lambda: zip_bytes(saved.checkpoint),
                           file_name=f"{project.name}-student.zip", mime="application/zip",
                           help="A standard transformers model folder with a model card: "
                                "load it with pipeline('text-classification', model=FOLDER, "
                                "trust_remote_code=True).")
        with d2:
            st.page_link("views/predict.py", label="Label new files with it",
                         icon=":material/arrow_forward:")


def started_at(stamp: str) -> str:
    """A stored UTC time as this server's local date and minute."""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def took(run) -> str:
    seconds = seconds_between(run.created, run.finished)
    return "" if seconds is None else format_duration(seconds)


RUN_HELP = {"epochs": "Epochs trained. \"6 (4 planned)\": the labels still changed after the "
                      "planned epochs, so the run went on (Extra epochs, under More settings).",
            "started": "When the run started, on this server's clock.",
            "took": "From its start to its end: loading the model, every epoch, writing the "
                    "predictions and saving the model (empty while it runs).",
            "best epoch": "The epoch whose weights were kept: the one with the highest "
                          "selection score.",
            "selection score": "How the kept epoch scored on texts it never trained on, "
                               "with its 95% interval. On held-back texts (the default): "
                               "the share whose student label is in the teacher's candidate "
                               "set, no gold needed. On human or audit labels (used once 20 "
                               "or more of your labels can be held out): the share it "
                               "agrees with. It picks the epoch; it is not accuracy against "
                               "the true labels. Empty for an update, which keeps its one "
                               "epoch."}
# The runs table's method names: short, the selectbox above has the long ones.
SHORT_METHOD_NAMES = {"candist": "CanDist", "sa": "Single-label", "uniform": "Uniform"}
runs = store.student_runs(project.id)
if runs:
    st.subheader("Runs")
    table = pd.DataFrame([{"run": f"#{r.id}", "kind": continuous.run_kind(r.config),
                           "method": SHORT_METHOD_NAMES.get(r.method, r.method),
                           "status": r.status,
                           "started": started_at(r.created), "took": took(r),
                           "epochs": continuous.planned_epochs(r.config, r.epochs),
                           # an update keeps its one epoch: no kept epoch to name or check
                           **({"best epoch": "", "selection score": ""}
                              if "update_of" in r.config else
                              {"best epoch": str(r.best_epoch or ""),
                               "selection score": continuous.kept_check(r.epochs,
                                                                        r.best_epoch)}),
                           "error": r.error or ""} for r in runs])
    shown = shown_columns({c: table[c] for c in table.columns},
                          keep=("run", "kind", "method", "status"))
    # Rows tall enough to wrap: an update's kind, an extended run's epochs and the
    # selection score with its interval stay whole at 1280 px (a walk saw them cut).
    fit = fitted_widths({c: table[c] for c in shown}, flex="kind", min_flex=160,
                        whole=("run", "method", "status", "took"),
                        wraps=("started", "epochs", "selection score", "error"))
    st.dataframe(table, width="stretch", hide_index=True, column_order=shown,
                 row_height=WRAP_ROW_PX, height=wrapped_height(len(table)),
                 column_config={c: st.column_config.TextColumn(c, width=w, help=RUN_HELP.get(c))
                                for c, w in fit.items()})
    if "selection score" in shown and table["selection score"].astype(bool).any():
        # Said under the table, not only in the column's tooltip (a walk asked what the
        # bracketed range was).
        st.caption("Selection score: how the kept epoch scored on texts it never trained "
                   "on, which picks the epoch kept. It is not accuracy against the true "
                   "labels. The range in brackets is its 95% interval. Hover a column name "
                   "for more.")
