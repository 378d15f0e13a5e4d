"""Distill: train the student in the background and watch its curves."""
import streamlit as st

from candist_core import charts
from candist_core.distill import distill_project, fail_interrupted_runs
from candist_core.encoder import device_description, pick_device
from candist_core.records import CandistError
from candist_core.student import HEAD_INITS, METHODS, StudentConfig
from views.common import registry, require_project, show_job

store, project = require_project()
st.title("Distill")
key = f"distill:{project.id}"
job = registry().get(key)
# A run left 'running' by a server that was killed is marked failed, and said so.
fail_interrupted_runs(store, project.id)
latest = next(iter(store.student_runs(project.id)), None)
if latest and latest.status == "failed" and not (job and job.running):
    st.warning(f"Run #{latest.id} ({latest.method}) failed: {latest.error}")
d = StudentConfig()
st.caption(f"Device: {device_description(pick_device('auto'))}")
c1, c2, c3 = st.columns(3)
METHOD_NAMES = {"candist": "CanDist (Distribution Refinery)",
                "sa": "Single-label distillation", "uniform": "Uniform over candidates"}
method = c1.selectbox("Method", METHODS, format_func=lambda m: METHOD_NAMES.get(m, m))
epochs = c2.number_input("Epochs", 1, 50, d.epochs)
lr = c3.number_input("Learning rate", 1e-6, 1e-3, d.lr, format="%.6f")
with st.expander("More settings"):
    a1, a2, a3, a4 = st.columns(4)
    batch_size = a1.number_input("Batch size", 1, 256, d.batch_size)
    delta = a2.slider("delta (small-loss share)", 0.1, 0.9, d.delta)
    tau = a3.slider("tau (high confidence)", 0.5, 1.0, d.tau)
    gamma = a4.slider("gamma (sharpening)", 0.5, 1.0, d.gamma)
    model = st.text_input("Model directory (empty: all-MiniLM-L6-v2)", value="")
    head_init = st.selectbox(
        "Classifier head starts", HEAD_INITS, format_func=lambda h: {
            "auto": f"auto (prototypes under {d.prototypes_below:g} samples a class, "
                    "else random)",
            "random": "random",
            "prototypes": "at the class prototypes of the candidate sets"}[h])
config = StudentConfig(method=method, epochs=int(epochs), lr=float(lr),
                       batch_size=int(batch_size), delta=delta, tau=tau, gamma=gamma,
                       model=model or None, head_init=head_init)
if st.button("Start distillation", type="primary", disabled=bool(job and job.running)):
    def work(j):
        def on_epoch(m):
            j.history.append(m)
        return distill_project(store, project.id, config, on_epoch=on_epoch,
                               on_step=lambda done, total: j.progress(done, total),
                               cancel=j.cancel)
    try:
        job = registry().start(key, "Distillation", work)
    except CandistError as exc:
        st.error(str(exc))
show_job(job, unit="steps")


@st.fragment(run_every=2.0 if job and job.running else None)
def curves() -> None:
    epochs_seen = job.history if job and job.history else None
    if epochs_seen is None:
        run = store.latest_student_run(project.id)
        epochs_seen = run.epochs if run else None
    if epochs_seen:
        st.plotly_chart(charts.training_figure(epochs_seen), width="stretch")


curves()
runs = store.student_runs(project.id)
if runs:
    st.subheader("Runs")
    st.dataframe([{"run": r.id, "method": r.method, "status": r.status,
                   "epochs": len(r.epochs), "best epoch": r.best_epoch, "error": r.error}
                  for r in runs], width="stretch")
