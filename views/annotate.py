"""Annotate: pick a teacher and strategy, see the plan, run it in the background, then
look at the candidate sets it produced."""
import pandas as pd
import streamlit as st

from candist_core import charts
from candist_core.metrics import teacher_run_metrics
from candist_core.prompts import STRATEGIES
from candist_core.records import CandistError
from candist_core.teacher import TeacherConfig, annotate_project, make_teacher, plan_annotation
from views.common import registry, require_project, show_job

PRICE_HELP = ("For the cost estimate only. The default is gpt-4o-mini's list price; set 0 "
              "for your own server.")
store, project = require_project()
st.title("Annotate")
key = f"annotate:{project.id}"
job = registry().get(key)

teacher_kind = st.radio("Teacher", ["offline", "openai"], horizontal=True,
                        format_func=lambda k: {"offline": "Offline (no key, no internet)",
                                               "openai": "OpenAI-compatible LLM"}[k])
c1, c2, c3 = st.columns(3)
strategy = c1.selectbox("Strategy", STRATEGIES, index=STRATEGIES.index("ca_add"),
                        format_func=lambda s: {"sa": "SA: one label", "ca_add":
                                               "CA_add: label + doubtful alternatives",
                                               "ca_all": "CA_all: every possible label",
                                               "sc": "SC: K samples, top-k",
                                               "select": "Select: LLM picks from its set"}[s])
total = store.count_samples(project.id)
limit = c2.number_input("Samples (first N)", min_value=1, max_value=max(total, 1),
                        value=max(total, 1))
settings = {}
d = TeacherConfig()
base_url = model = api_key = None
if teacher_kind == "openai":
    base_url = c3.text_input("Base URL", value="https://api.openai.com/v1")
    model = c3.text_input("Model", value="gpt-4o-mini")
    api_key = st.text_input("API key (kept for this browser session only, never saved)",
                            type="password", key="api_key")
    k1, k2, k3, k4 = st.columns(4)
    settings.update(shots=k1.number_input("Shots", 0, 50, d.shots),
                    concurrency=k2.number_input("Concurrency", 1, 64, d.concurrency),
                    price_in_per_1k=k3.number_input("$ / 1k input tokens", 0.0, 1.0,
                                                    d.price_in_per_1k, format="%.5f",
                                                    help=PRICE_HELP),
                    price_out_per_1k=k4.number_input("$ / 1k output tokens", 0.0, 1.0,
                                                     d.price_out_per_1k, format="%.5f",
                                                     help=PRICE_HELP),
                    temperature=st.slider("Temperature", 0.0, 1.5, d.temperature))
if strategy == "sc":
    s1, s2 = st.columns(2)
    settings.update(samples=s1.number_input("K samples", 1, 40, d.samples),
                    top_k=s2.number_input("keep top-k", 1, 10, d.top_k))
try:
    config = TeacherConfig(strategy=strategy, **settings)
    plan = plan_annotation(store, project.id, config, kind=teacher_kind, limit=int(limit))
except CandistError as exc:
    st.error(str(exc))
    st.stop()
st.caption(f"Plan: {plan['samples']} samples, {plan['requests']} requests, "
           f"~{plan['prompt_tokens']:,} prompt + ~{plan['completion_tokens']:,} completion "
           f"tokens, ~${plan['cost']:.4f}. Replies already paid for are re-used.")

if st.button("Start annotation", type="primary", disabled=bool(job and job.running)):
    try:
        teacher = make_teacher(teacher_kind, model=model, base_url=base_url,
                               api_key=api_key or None, shots=config.shots)
        job = registry().start(key, "Annotation", lambda j: annotate_project(
            store, project.id, teacher, config, limit=int(limit), progress=j.progress,
            cancel=j.cancel))
    except CandistError as exc:
        st.error(str(exc))
show_job(job)
if job and job.status in ("done", "cancelled") and job.result is not None:
    st.write(job.result.describe())

run = store.latest_teacher_run(project.id)
if run is None:
    st.stop()
st.subheader(f"Latest run #{run.id}: {run.teacher} / {run.model} / {run.strategy}")
labels = store.label_schema(project.id).names


@st.cache_data(max_entries=4, show_spinner=False)
def run_overview(run_id: int, version: tuple) -> tuple[dict, list]:
    """Metrics and candidate sets of a run; ``version`` changes whenever the run does."""
    rows = store.annotation_summary(run_id)
    metrics = teacher_run_metrics(store, store.teacher_run(run_id), len(labels), rows=rows)
    return metrics, [r.candidates for r in rows if r.candidates]


metrics, sets = run_overview(run.id, (str(store.path), run.use_order, run.status,
                                       run.finished, tuple(labels)))
m = st.columns(5)
m[0].metric("Annotated", metrics["annotated"])
m[1].metric("Mean #labels", f"{metrics['mean_labels']:.2f}" if metrics["mean_labels"] else "-")
m[2].metric("Coverage (1-α)", f"{metrics['coverage']:.1%}" if metrics["coverage"] is not None
            else "no gold")
m[3].metric("SA accuracy", f"{metrics['sa_accuracy']:.1%}"
            if metrics["sa_accuracy"] is not None else "no gold")
m[4].metric("Invalid replies", f"{metrics['invalid_rate']:.1%}")
tab1, tab2, tab3, tab4 = st.tabs(["Set sizes", "Labels", "Co-occurrence", "Errors"])
tab1.plotly_chart(charts.set_size_figure(sets), width="stretch")
tab2.plotly_chart(charts.label_frequency_figure(sets, labels), width="stretch")
tab3.plotly_chart(charts.cooccurrence_figure(sets, labels), width="stretch")
if metrics["per_class"]:
    tab2.dataframe(pd.DataFrame(metrics["per_class"]), width="stretch")
errors = store.annotations(run.id, errors_only=True) if metrics["errors"] else []
if errors:
    tab4.dataframe(pd.DataFrame([{"id": e.ext_id, "kind": e.error_kind, "error": e.error,
                                  "reply": e.raw} for e in errors]),
                   width="stretch")
else:
    tab4.write("No errors.")
