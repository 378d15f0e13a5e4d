"""Annotate: pick a teacher and strategy, see the plan, run it in the background, then
look at the candidate sets it produced."""
import pandas as pd
import streamlit as st

from candist_core import charts
from candist_core.conformal import conformal_annotate, min_calibration
from candist_core.embedding_cache import DEFAULT_ENCODER_NAME
from candist_core.human_teacher import (annotate_with_decisions, plan_with_decisions,
                                        taught_caption)
from candist_core.metrics import teacher_run_metrics
from candist_core.prompts import STRATEGIES
from candist_core.records import CandistError
from candist_core.teacher import (TeacherConfig, annotate_project, make_teacher,
                                  plan_annotation, resumable_run)
from views.common import registry, require_project, show_job, show_quality

PRICE_HELP = ("For the cost estimate only. The default is gpt-4o-mini's list price; set 0 "
              "for your own server.")
REANNOTATE = {"offline": "Re-annotate with what people decided",
              "openai": "Re-annotate the ambiguous with what people decided"}
REANNOTATE_HELP = {
    "offline": "The offline teacher ranks the texts again: the label descriptions, joined by "
               "votes from the texts people labelled (Review page, audit included; a text's "
               "own label never votes for itself), weighed by how well those votes predict "
               "the human labels (they are used only when they beat the descriptions alone "
               "on those texts by more than the noise of so few labels; otherwise the run "
               "repeats the teacher). Every text is ranked again. The new candidate sets "
               "become a new teacher run; earlier runs are kept, and the figures below "
               "compare it with the previous run. No requests, no cost. Continuous "
               "updates of the student do this on their own (Distill page).",
    "openai": "Asks the LLM again only about the texts that still have more than one "
              "candidate and no human decision, with the most similar texts people labelled "
              "as examples in each prompt (Shots). Every other text keeps its set. The answers "
              "become a new teacher run; earlier runs are kept. Replies already paid for come "
              "from the cache and are never paid twice.",
}
store, project = require_project("annotate")
st.title("Annotate")
show_quality(store, project)
# By database and project: one process may serve two databases (tests, a second CANDIST_DB).
key = f"annotate:{store.path}:{project.id}"
job = registry().get(key)

teacher_kind = st.radio("Teacher", ["offline", "openai"], horizontal=True,
                        format_func=lambda k: {"offline": "Offline (no key, no internet)",
                                               "openai": "OpenAI-compatible LLM"}[k])
c1, c2, c3 = st.columns([2, 1, 1])
strategy = c1.selectbox("Strategy", STRATEGIES, index=STRATEGIES.index("ca_add"),
                        format_func=lambda s: {"sa": "SA: one label", "ca_add":
                                               "CA_add: label + doubtful alternatives",
                                               "ca_all": "CA_all: every possible label",
                                               "sc": "SC: K samples, top-k",
                                               "select": "Select: LLM picks from its set"}[s],
                        help="What the teacher returns per text. SA (single answer): its one "
                             "best label. CA (candidate annotation): a set of labels: "
                             "CA_add adds the alternatives it doubts between, CA_all every "
                             "label it finds possible (larger sets, more often holding the "
                             "right label). SC (self-consistency): K answers (an LLM's "
                             "replies, or draws from the offline teacher's scores), the top-k "
                             "most frequent. Select: the LLM picks one label from its own set "
                             "(the offline teacher gives its top label). The student learns "
                             "from the sets.")
total = store.count_samples(project.id)
limit = c2.number_input("Samples (first N)", min_value=1, max_value=max(total, 1),
                        value=max(total, 1),
                        help="Annotate only the first N texts of the project (in import "
                             "order), e.g. to try a paid LLM on a few before all.")
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
    asked = int(limit)
    resume_run, already = resumable_run(
        store, project.id, config, kind=teacher_kind, limit=asked,
        model=DEFAULT_ENCODER_NAME if teacher_kind == "offline" else (model or ""))
    left = asked - already
    if already and left and teacher_kind == "openai":     # the requests of the texts left
        done = store.done_sample_ids(resume_run)
        plan = plan_annotation(store, project.id, config, kind=teacher_kind, samples=[
            s for s in store.samples(project.id, limit=asked) if s.id not in done])
    else:
        plan = plan_annotation(store, project.id, config, kind=teacher_kind, limit=asked)
except CandistError as exc:
    st.error(str(exc))
    st.stop()
nothing_left = already > 0 and left == 0
# The run this page's job has just made: its summary below says what happened, so the
# "nothing left" box would read as if the job had done nothing (a walk saw it so).
just_made = bool(job and job.status == "done" and job.outcome() is not None and
                 getattr(job.result, "run_id", None) == resume_run)
kept = (f" {already} of the first {asked} texts already have candidate labels from this "
        f"teacher with these settings (teacher run #{resume_run}): kept, not asked again."
        if already else "")
if nothing_left and just_made:
    st.caption(f"The run below has just given all {asked} texts their candidate labels "
               f"(teacher run #{resume_run}). Starting it again with these settings would "
               f"change nothing.")
elif nothing_left:
    same = (" The offline teacher gives the same sets for the same settings." if
            teacher_kind == "offline" else "")
    other = "strategy or other settings" if teacher_kind == "offline" else \
        "strategy, model or other settings"
    st.info(f"All {asked} texts already have candidate labels from this teacher with these "
            f"settings (teacher run #{resume_run}): nothing left to annotate"
            + (" and nothing to pay for." if teacher_kind == "openai" else ".") + same
            + f" To annotate again, choose another {other} (a new teacher run; this one is "
              f"kept)"
            + (", or re-annotate with what people decided (the button below)."
               if store.human_label_count(project.id) else
               ", or, once people have labelled texts on the Review page, re-annotate with "
               "what they decided (a button here then)."),
            icon=":material/check_circle:")
elif teacher_kind == "offline":
    st.caption(f"Plan: {left} samples, ranked on this machine by a small sentence encoder: "
               f"no requests, no cost.{kept}")
else:
    st.caption(f"Plan: {left} samples, {plan['requests']} requests, "
               f"~{plan['prompt_tokens']:,} prompt + ~{plan['completion_tokens']:,} "
               f"completion tokens, ~${plan['cost']:.4f}. Replies already paid for are "
               f"re-used.{kept}")


def start(name: str, annotate):
    """Start ``annotate`` (annotate_project or annotate_with_decisions) as the page's job;
    the job, or the current one when the teacher cannot be made."""
    try:
        # Loading the sentence encoder takes seconds on a laptop: said, not a frozen button.
        with st.spinner("Loading the teacher (its sentence encoder) before the first texts..."
                        if teacher_kind == "offline" else "Connecting to the model..."):
            teacher = make_teacher(teacher_kind, model=model, base_url=base_url,
                                   api_key=api_key or None, shots=config.shots)
        registry().start(key, name, lambda j: annotate(
            store, project.id, teacher, config, limit=int(limit), progress=j.progress,
            cancel=j.cancel))
    except CandistError as exc:
        st.error(str(exc))
        return job
    # The whole page again at once, so its buttons are drawn disabled while the job runs
    # (drawn on from the click, they stayed enabled; a walk found it on Distill).
    st.rerun()


if st.button("Start annotation", type="primary",
             disabled=bool(job and job.running) or nothing_left,
             help="Nothing left to annotate with these settings (see above)." if nothing_left
             else None):
    job = start("Annotation", annotate_project)
if store.human_label_count(project.id):
    if teacher_kind == "openai":
        try:
            replan = plan_with_decisions(store, project.id, config, kind="openai")
            st.caption(f"Re-annotating would ask again about {replan['reask']} ambiguous "
                       f"texts of run #{replan['base_run']} that nobody decided: "
                       f"{replan['requests']} requests, ~${replan['cost']:.4f} (replies "
                       f"already paid for are re-used).")
        except CandistError as exc:
            st.caption(str(exc))
    if st.button(REANNOTATE[teacher_kind], disabled=bool(job and job.running),
                 help=REANNOTATE_HELP[teacher_kind]):
        job = start("Re-annotation", annotate_with_decisions)
show_job(job)
newest = store.latest_teacher_run(project.id)
# The job's summary while it is news: not once a later run (e.g. re-taught by a continuous
# update) has replaced the run it describes, nor after its success line has gone.
if job and job.status in ("done", "cancelled") and job.result is not None and \
        job.outcome() is not None and \
        getattr(job.result, "run_id", None) == (newest.id if newest else None):
    st.write(job.result.describe())
    st.page_link("views/distill.py", icon=":material/arrow_forward:",
                 label="Next: distill a student from these candidate sets (Distill page)",
                 query_params={"project": project.name})

run = store.latest_teacher_run(project.id)
if run is None:
    st.stop()
with st.expander("Conformal candidate sets: sets that hold the right label as often as you "
                 "ask, calibrated on your audit"):
    st.caption("Split conformal prediction: from the teacher's scores for the right label of "
               "each audited text (Review page, Audit mode), pick the score threshold that "
               "keeps the right label in at least the target share of the sets, with a "
               "finite-sample guarantee. The new sets come from the scores already stored: "
               "no new LLM requests. They become a new teacher run; earlier runs are kept.")
    audited = store.audit_status(project.id)["labeled"]
    target = st.slider("Target coverage", 0.5, 0.99, 0.9, 0.01,
                       help="The share of texts whose candidate set should hold the right "
                            "label. Higher targets give larger sets.")
    need = min_calibration(target)
    st.caption(f"{audited} audited texts; {need} or more are needed at this target.")
    if st.button("Build conformal sets", disabled=audited < need):
        try:
            with st.spinner("Scoring every text and calibrating..."):
                result = conformal_annotate(store, project.id, coverage=target)
            st.success(result.describe())
            run = store.latest_teacher_run(project.id)
        except CandistError as exc:
            st.error(str(exc))
st.subheader(f"Latest teacher run #{run.id}: {run.teacher} / {run.model} / {run.strategy}",
             help="Teacher and student runs are numbered by one counter each for the whole "
                  "database (as the command line names them), so a project's first run can "
                  "have a number above 1.")
if taught := taught_caption(run.params):
    st.caption(taught)
labels = store.label_schema(project.id).names


@st.cache_data(max_entries=4, show_spinner=False)
def run_overview(run_id: int, version: tuple) -> tuple[dict, list]:
    """Metrics and candidate sets of a run; ``version`` changes whenever the run does."""
    rows = store.annotation_summary(run_id)
    metrics = teacher_run_metrics(store, store.teacher_run(run_id), len(labels), rows=rows)
    return metrics, [r.candidates for r in rows if r.candidates]


metrics, sets = run_overview(run.id, (str(store.path), run.use_order, run.status,
                                       run.finished, tuple(labels)))
earlier = [r for r in store.teacher_runs(project.id) if r.id < run.id and r.status == "done"]
before = None
if earlier:
    prev = max(earlier, key=lambda r: r.id)
    before = run_overview(prev.id, (str(store.path), prev.use_order, prev.status,
                                    prev.finished, tuple(labels)))[0]
    st.caption(f"The arrows compare with the previous finished run, #{prev.id} "
               f"({prev.teacher} / {prev.strategy}).")


def delta(key: str, points: bool = True) -> str | None:
    """The change from the previous run, in percentage points (None without one)."""
    if before is None or metrics.get(key) is None or before.get(key) is None:
        return None
    change = round((metrics[key] - before[key]) * 100, 1) if points else \
        round(metrics[key] - before[key], 2)
    if change == 0:         # no arrow for nothing: a green "+0.0" reads as progress
        return None
    return f"{change:+.1f} pts" if points else f"{change:+.2f}"


m = st.columns(5)
m[0].metric("Annotated", metrics["annotated"], help="Texts with a candidate set.")
m[1].metric("Mean #labels", f"{metrics['mean_labels']:.2f}" if metrics["mean_labels"] else "-",
            delta=delta("mean_labels", points=False), delta_color="off",
            help="Average size of a candidate set: how often the teacher hesitates.")
m[2].metric("Coverage (1-α)", f"{metrics['coverage']:.1%}" if metrics["coverage"] is not None
            else "no gold", delta=delta("coverage"),
            help="Share of the texts with a gold label whose candidate set contains it "
                 "(1 minus the miss rate α). Higher is better: larger sets miss fewer "
                 "true labels, but say less.")
m[3].metric("SA accuracy", f"{metrics['sa_accuracy']:.1%}"
            if metrics["sa_accuracy"] is not None else "no gold", delta=delta("sa_accuracy"),
            help="Single-answer accuracy: how often the teacher's first label equals the gold "
                 "label.")
m[4].metric("Invalid replies", f"{metrics['invalid_rate']:.1%}",
            help="Replies that named no valid label (an LLM answering off the list).")
if metrics["sa_accuracy"] is not None:
    measured = metrics.get("n_gold")
    st.caption((f"Measured on the {measured} texts with a gold label. " if measured else
                "Measured on the texts with a gold label. ")
               + f"For scale: guessing one of the {len(labels)} labels at random is right "
                 f"{1 / len(labels):.0%} of the time; keeping every label covers 100% at "
                 f"{len(labels)} labels a text.")
tab1, tab2, tab3, tab4 = st.tabs(["Set sizes", "Labels", "Co-occurrence", "Errors"])
tab1.plotly_chart(charts.set_size_figure(sets), width="stretch")
tab2.plotly_chart(charts.label_frequency_figure(sets, labels), width="stretch")
tab3.plotly_chart(charts.cooccurrence_figure(sets, labels), width="stretch")
if metrics["per_class"]:
    per_class = pd.DataFrame(metrics["per_class"])
    for share in ("coverage", "beta", "f1", "sa_accuracy"):    # percents, as the tiles
        if share in per_class:
            per_class[share] = per_class[share] * 100
    PERCENT = "%.1f%%"
    tab2.dataframe(per_class, width="stretch", hide_index=True, column_config={
        "label": st.column_config.TextColumn("gold label"),
        "n": st.column_config.NumberColumn("texts", help="Texts with this gold label"),
        "coverage": st.column_config.NumberColumn(
            "coverage", format=PERCENT,
            help="Share of those texts whose candidate set holds the gold label"),
        "beta": st.column_config.NumberColumn(
            "narrowing (β)", format=PERCENT,
            help="How much the sets narrow the labels down: (labels − set size) / "
                 "(labels − 1); 100% for one-label sets, 0% when every label is kept"),
        "f1": st.column_config.NumberColumn(
            "balance (F1)", format=PERCENT,
            help="The harmonic mean of coverage and narrowing: high only when the sets are "
                 "both right and small"),
        "mean_labels": st.column_config.NumberColumn(
            "labels a text", format="%.2f", help="Mean candidate-set size"),
        "sa_accuracy": st.column_config.NumberColumn(
            "teacher's first label right", format=PERCENT,
            help="The 'SA accuracy' tile above, for this label: how often the teacher's "
                 "single best label is the gold one")})
    tab2.caption("One row per gold label: how the teacher's candidate sets do on the texts "
                 "that have it (hover a column name for what it measures).")
errors = store.annotations(run.id, errors_only=True) if metrics["errors"] else []
if errors:
    tab4.dataframe(pd.DataFrame([{"id": e.ext_id, "kind": e.error_kind, "error": e.error,
                                  "reply": e.raw} for e in errors]),
                   width="stretch")
else:
    tab4.write("No errors: every annotated text has a candidate set of valid labels (no "
               "failed request, no unusable LLM reply).")
