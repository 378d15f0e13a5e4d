"""Review: the ambiguous samples, most ambiguous first; one keystroke per decision.

Each label has one fixed key for the whole project (1-9, then letters; set on the Labels
page) and one fixed place: the teacher's candidates are highlighted, never reordered.
S skips, U undoes the last decision; any recent decision can be changed or undone from the
history below. Every decision is written to the database the moment it is made.
"""
import time

import numpy as np
import streamlit as st

from candist_core import continuous
from candist_core.access import can_open
from candist_core.keys import assign_keys
from candist_core.review import (DEFAULT_REASON, DEFAULT_SIGNAL, PACE_MIN_DECISIONS, SIGNALS,
                                 effective_signal, label_buttons, pace_text, rank_ambiguous)
from views.common import (registry, require_project, reviewer_name, role_in, show_quality,
                          sign_in_configured)

store, project = require_project("review")
st.title("Review")
schema = store.label_schema(project.id)
labels = schema.names
descriptions = {l.name: l.description for l in schema.labels}
keys = assign_keys(labels, store.label_keys(project.id))
who = reviewer_name()
if st.session_state.get("review_who", who) != who and st.session_state.get("review_shown"):
    # renamed in the sidebar: the text held under the old name goes back to the queue
    store.release_lease(project.id, st.session_state["review_shown"],
                        st.session_state["review_who"])
st.session_state["review_who"] = who
MODES = {"queue": "Queue: most worth a look", "audit": "Audit: random, blind"}
# The mode and the queue's order share one row, so the text under review sits high on a
# laptop screen; the counters go below the buttons.
top_mode, top_order = st.columns([5, 6], vertical_alignment="top")
mode = top_mode.radio("Mode", list(MODES), format_func=MODES.get, horizontal=True,
                      key="review_mode",
                      index=1 if st.query_params.get("mode") == "audit" else 0,
                      help="Queue: the texts where a human label changes the most, hardest "
                           "first, with the teacher's candidates highlighted. Audit: a random "
                           "sample you label without seeing the teacher or the student, so "
                           "the app can measure how right its labels are.")
st.query_params["mode"] = mode


def already_labelled(sample_id: int, label: str) -> bool:
    """Whether this reviewer's current decision on the text is already ``label``. A
    selectbox that left the page can send its old value once more with the next run (a
    quick typist's next key); that must not record the decision twice."""
    mine = store.decision_of(project.id, sample_id, who)
    if label == SKIP:
        return mine is not None and mine.action == "skip"
    return mine is not None and mine.action == "label" and mine.label == label


SKIP = "(skip)" if "(skip)" not in labels else "(skip this text)"   # the history's skip


def ambiguous_undecided() -> int | None:
    """The queue's ambiguous texts (more than one candidate) nobody has decided yet, or
    None before the queue is loaded."""
    queued = st.session_state.get("queue")
    if queued is None:
        return None
    return int((~np.isin(queued["ambiguous"], store.decided_ids(project.id))).sum())


def update_student_if_due() -> None:
    """The continuous student: after every N new labels, or once every ambiguous text is
    decided, an update starts in a background thread (a few reads here, the training
    elsewhere: the reviewer never waits for it)."""
    continuous.update_if_due(store, registry(), project.id,
                             ambiguous_left=ambiguous_undecided())


def audit_decide(sample_id: int, action: str, label: str | None = None) -> None:
    store.record_decision(project.id, sample_id, action=action, label=label, who=who,
                          audit=True)
    st.session_state["flash"] = f"Saved: {label or 'skipped'}."
    update_student_if_due()


def audit_search(sample_id: int, widget: str) -> None:
    if st.session_state.get(widget) and not already_labelled(sample_id,
                                                             st.session_state[widget]):
        audit_decide(sample_id, "label", st.session_state[widget])


def audit_undo() -> None:
    undone = store.undo_decision(project.id, who=who)
    st.session_state["flash"] = "Undone." if undone is not None else "Nothing to undo."


def audit_mode() -> None:
    """Blind labels on a uniformly random, seeded sample: no candidates, no student, every
    label offered with its fixed key. The quality estimates read only these."""
    st.caption("An audit is a random sample of this project's texts that you label without "
               "seeing the teacher's candidates or the student's guess. Because it is random "
               "and blind, it measures how right the teacher, the student and the export "
               "are (with 95% intervals, on Home, Annotate, Distill and Export). Audit labels "
               "also count as human labels in the export and in training.")
    flash_text = st.session_state.pop("flash", None)
    if flash_text:
        st.toast(flash_text)
    show_quality(store, project)
    status = store.audit_status(project.id)
    c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
    n = int(c1.number_input("Texts to draw", 10, 5000, 50, step=10,
                            help="About 50 gives estimates within roughly ±14 points; 200 "
                                 "within ±7. Drawing again adds new random texts and keeps "
                                 "the ones already drawn."))
    if c2.button(f"Draw {n} {'more ' if status['drawn'] else ''}random texts",
                 type="secondary" if status["left"] else "primary"):
        store.draw_audit(project.id, n)
        st.rerun()
    if not status["drawn"]:
        return
    st.progress((status["labeled"] + status["skipped"]) / status["drawn"],
                text=f"{status['labeled']} of {status['drawn']} drawn texts audited"
                     + (f", {status['skipped']} skipped" if status["skipped"] else ""))
    todo = store.audit_queue(project.id, limit=1)
    if not todo:
        st.success("Every drawn text is audited. Draw more for narrower intervals.")
        st.button("Undo last decision", shortcut="U", on_click=audit_undo)
        return
    sample = todo[0]
    with st.container(border=True):
        st.text(sample.text)  # plain text, never rendered as HTML or Markdown
    buttons = label_buttons(labels, [], keys=keys)
    with st.container(horizontal=True, key="audit-buttons"):
        for b in buttons:
            st.button(b["caption"], key=f"audit-{labels.index(b['label'])}", shortcut=b["key"],
                      help=descriptions.get(b["label"]) or None, on_click=audit_decide,
                      args=(sample.id, "label", b["label"]))
    if len(buttons) < len(labels):
        widget = f"audit-search-{sample.id}"
        st.selectbox(f"Any of the {len(labels)} labels", labels, index=None, key=widget,
                     placeholder="Type to search, Enter to pick", on_change=audit_search,
                     args=(sample.id, widget))
    with st.container(horizontal=True, key="audit-actions"):
        st.button("Skip", shortcut="S", key="audit-skip", on_click=audit_decide,
                  args=(sample.id, "skip"),
                  help="Leave this text out of the audit (skips are not counted in the "
                       "estimates).")
        st.button("Undo last", shortcut="U", key="audit-undo", on_click=audit_undo,
                  help="Undo your last decision.")


if mode == "audit":
    audit_mode()
    st.stop()
SIGNAL_NAMES = {"set_size": "Candidate-set size", "entropy": "Student entropy",
                "disagreement": "Teacher/student disagreement",
                "out_of_candidate": "Student outside the candidates",
                "low_confidence": "Low confidence",
                "label_issue": "Likely teacher mistakes (cleanlab)",
                "likely_wrong": "Likely wrong exported labels", "random": "Random order"}
# What each order puts first, one line each: the popover says the chosen one's, the "Order
# by" tooltip lists them all. "Only": the order leaves the other texts out of the queue.
SIGNAL_LINES = {
    "set_size": "the texts the teacher hesitated on most (the most candidate labels) first; "
                "only texts with more than one candidate label",
    "entropy": "the texts whose student probabilities are the most spread out (highest "
               "entropy) first",
    "disagreement": "only the texts where the teacher's and the student's top labels "
                    "differ, the least confident first",
    "out_of_candidate": "only the texts where the student picks a label the teacher left "
                        "out (a likely teacher miss), the most confident first",
    "low_confidence": "the least sure prediction first (the student's, or the teacher's "
                      "before a first student)",
    "label_issue": "only the texts with a cleanlab label-quality score (it needs a student), "
                   "the teacher labels that fit their text worst first, judged by models "
                   "that never trained on that text",
    "likely_wrong": "only the texts scored by models that never trained on them (it needs "
                    "a student), the student labels they find least probable first: the "
                    "labels most likely to go wrong into the export",
    "random": "every annotated text in a fixed shuffle, a fair sample of the whole project",
}
SIGNAL_HELP = "Which texts come first. " + " ".join(
    f"{SIGNAL_NAMES[s]}: {SIGNAL_LINES[s]}." for s in SIGNALS)
ALL_LABELS = "(all labels)"
# The orders that leave texts out of the queue ("only" in SIGNAL_LINES).
NARROW = ("disagreement", "out_of_candidate", "label_issue", "likely_wrong")
ORDERS = [DEFAULT_SIGNAL] + [s for s in SIGNALS if s != DEFAULT_SIGNAL]


def describe_order(signal: str, label_filter: str) -> str:
    """One line on what the chosen order (and label filter) puts in the queue."""
    used = effective_signal(signal, has_student=latest_student is not None)
    name = SIGNAL_NAMES[signal] + (" (the default)" if signal == DEFAULT_SIGNAL else "")
    line = f"Chosen order, {name}: {SIGNAL_LINES[signal]}."
    if used != signal:
        line = (f"Chosen order, {SIGNAL_NAMES[signal]}: until a first student it is "
                f"{SIGNAL_NAMES[used]}, {SIGNAL_LINES[used]}.")
    if label_filter != ALL_LABELS:
        line += (f" Only texts whose candidate set or student label includes "
                 f"{label_filter}.")
    return line


# The chosen order and filter live in "review_signal" / "review_label_filter"; the popover's
# two selectboxes are drawn under keys of a generation that a reset moves on. (Setting the
# widgets' own keys lasted one text: the closed popover's selectboxes are not mounted, so
# the browser never saw the new value and sent the old one back with the next click.)
ORDER_GENERATION = "review_order_generation"


def widget_key(name: str) -> str:
    return f"{name}-{st.session_state.get(ORDER_GENERATION, 0)}"


def chose(name: str) -> None:
    st.session_state[name] = st.session_state[widget_key(name)]


def reset_order() -> None:
    """Back to the default order over all labels, with new selectboxes showing it."""
    st.session_state["review_signal"] = DEFAULT_SIGNAL
    st.session_state["review_label_filter"] = ALL_LABELS
    st.session_state[ORDER_GENERATION] = st.session_state.get(ORDER_GENERATION, 0) + 1


# A popover, not an expander: opened, it floats over the page instead of pushing the text
# under review down (a new-user walk lost its place that way).
chosen = st.session_state.get("review_signal", DEFAULT_SIGNAL)
chosen_label = st.session_state.get("review_label_filter", ALL_LABELS)
if chosen not in ORDERS:
    chosen = DEFAULT_SIGNAL
if chosen_label not in [ALL_LABELS] + labels:      # a label renamed or removed meanwhile
    chosen_label = ALL_LABELS
latest_teacher, latest_student = (store.latest_teacher_run(project.id),
                                  store.latest_student_run(project.id))
used = effective_signal(chosen, has_student=latest_student is not None)
chosen_name = (SIGNAL_NAMES.get(chosen, chosen) if used == chosen else
               f"{SIGNAL_NAMES.get(used, used)} until a first student")
with top_order.popover(f"Queue order: {chosen_name}"
                      + ("" if chosen_label == ALL_LABELS else f" · only {chosen_label}"),
                      width="stretch", help="Choose which texts come first, or keep only "
                                            "the texts involving one label."):
    c1, c2 = st.columns(2)
    signal = c1.selectbox("Order by", ORDERS, index=ORDERS.index(chosen),
                          format_func=lambda s: SIGNAL_NAMES.get(s, s), help=SIGNAL_HELP,
                          key=widget_key("review_signal"), on_change=chose,
                          args=("review_signal",))
    label_filter = c2.selectbox("Only samples involving", [ALL_LABELS] + labels,
                                index=([ALL_LABELS] + labels).index(chosen_label),
                                help="Keep the texts whose candidate set or student label "
                                     "includes this label.",
                                key=widget_key("review_label_filter"), on_change=chose,
                                args=("review_label_filter",))
    st.caption(describe_order(signal, label_filter))
    st.caption(DEFAULT_REASON)
label = None if label_filter == ALL_LABELS else label_filter


@st.fragment(run_every=2.0 if continuous.read_freshness(store, registry(), project.id)
             .updating is not None else None)
def student_freshness() -> None:
    """One line on how fresh the student is; refreshes itself while an update runs (the
    queue re-ranks on the next decision after it finishes)."""
    fresh = continuous.read_freshness(store, registry(), project.id)
    was_updating = st.session_state.get("review_updating", False)
    st.session_state["review_updating"] = fresh.updating is not None
    if was_updating and fresh.updating is None:
        # The update is done: the whole page again, so the text's candidates, the student's
        # percentages and the counters follow the new runs; the text being read stays.
        st.session_state["review_keep_shown"] = True
        st.rerun()
    st.caption(continuous.describe(fresh, can_distill=can_open(role_in(store, project),
                                                               "distill"),
                                   ambiguous_left=ambiguous_undecided()),
               help=continuous.HELP)


def load_queue(reviewed: list[int]) -> dict:
    """The ranked sample ids (samples sent from the Student labels page first); ``reviewed``:
    texts already decided in this queue before a new run re-ranked it, kept in front so
    the progress bar goes on counting them."""
    signals = store.review_signals(project.id)
    ranked = signals["sample_id"][rank_ambiguous(signals, signal=signal, label=label)].tolist()
    waiting = [i for i in store.sent_to_review(project.id) if i not in reviewed]
    first = reviewed + waiting
    sent = set(first)
    candidates = dict(zip(signals["sample_id"].tolist(), signals["candidates"]))
    return {"ids": first + [i for i in ranked if i not in sent], "candidates": candidates,
            # texts whose candidate set holds more than one label (Home's "ambiguous")
            "ambiguous": np.array([i for i, c in candidates.items() if len(c) > 1],
                                  dtype=np.int64),
            "teacher_label": dict(zip(signals["sample_id"].tolist(),
                                      signals["teacher_label"])),
            "teacher_run": signals["teacher_run"], "student_run": signals["student_run"],
            "sent": set(waiting)}


# A new teacher or student run re-ranks the queue (and fills it after a first annotation);
# texts sent from Student labels (kept in the database) are put first.
queue_key = (project.id, signal, label, store.sent_to_review_version(project.id),
             latest_teacher and latest_teacher.id, latest_student and latest_student.id)
if st.session_state.get("queue_key") != queue_key or st.session_state.get("queue") is None:
    old, old_key = st.session_state.get("queue"), st.session_state.get("queue_key")
    kept = []
    if old is not None and old_key is not None and old_key[:3] == queue_key[:3]:
        # Same order and filter, a new teacher or student run: re-rank what is left.
        done = set(store.decided_ids(project.id).tolist())
        kept = [i for i in old["ids"] if i in done]
        # The text held on screen was picked by the old ranking: let it go, so the new
        # ranking's first text shows (it comes back if it is still first), unless the
        # reviewer is reading it (the page refreshed itself when an update finished).
        if st.session_state.get("review_shown") is not None and \
                not st.session_state.get("review_keep_shown"):
            store.release_lease(project.id, st.session_state["review_shown"], who)
    st.session_state["queue"] = load_queue(kept)
    st.session_state["queue_key"] = queue_key
st.session_state.pop("review_keep_shown", None)
queue = st.session_state["queue"]
flash = st.session_state.pop("flash", None)


def decide(sample_id: int, action: str, label: str | None = None,
           in_candidates: bool | None = None) -> None:
    # Also releases this reviewer's lease on the text: the next render claims the next one.
    store.record_decision(project.id, sample_id, action=action, label=label,
                          in_candidates=in_candidates, who=who)
    st.session_state["flash"] = f"Saved: {label or 'skipped'}."
    update_student_if_due()


def pick_searched(sample_id: int, widget: str, candidates: list[str]) -> None:
    choice = st.session_state.get(widget)
    if choice and not already_labelled(sample_id, choice):
        decide(sample_id, "label", choice, choice in candidates)


def back_in_queue(sample_id: int) -> None:
    """Show an undone sample next: first in the list, and the text on screen let go (a
    claim resumes a held text before anything else)."""
    ids = queue["ids"]
    if sample_id in ids:
        ids.remove(sample_id)
    ids.insert(0, sample_id)
    shown = st.session_state.get("review_shown")
    if shown is not None and shown != sample_id:
        store.release_lease(project.id, shown, who)


def after_undo(undone) -> str:
    """Put an undone text back in front of the queue unless an earlier decision of this
    reviewer stands on it again (an undone change), and say which, naming the text."""
    text = store.samples(project.id, ids=[undone.sample_id])[0].text
    text = text if len(text) <= 60 else text[:57] + "..."
    what = f"your {'skip' if undone.action == 'skip' else undone.label!r}"
    earlier = store.decision_of(project.id, undone.sample_id, who)
    if earlier is None:
        back_in_queue(undone.sample_id)
        return f"Undone {what} on “{text}”: the text is back at the top of this page."
    now = "a skip" if earlier.action == "skip" else repr(earlier.label)
    return f"Undone {what} on “{text}”: your earlier decision, {now}, stands again."


def undo_last() -> None:
    undone = store.undo_decision(project.id, who=who)
    st.session_state["flash"] = "Nothing to undo." if undone is None else after_undo(undone)


def undo_one(decision_id: int) -> None:
    undone = store.undo_decision_id(project.id, decision_id, who=who)
    if undone is not None:
        st.session_state["flash"] = after_undo(undone)


def change(sample_id: int, widget: str) -> None:
    new = st.session_state.get(widget)
    if new and not already_labelled(sample_id, new):
        if new == SKIP:
            store.record_decision(project.id, sample_id, action="skip", who=who)
        else:
            store.record_decision(project.id, sample_id, action="label", label=new,
                                  in_candidates=new in queue["candidates"].get(sample_id, []),
                                  who=who)
        st.session_state["flash"] = "Changed to a skip." if new == SKIP else f"Changed to {new}."
        update_student_if_due()


HISTORY_SHOWN = st.session_state.get("history_shown", 6)
# This reviewer's recent decisions, read once: the history below and the pace (from the
# database, so a reload keeps it).
MINE = store.recent_decisions(project.id, who=who, limit=max(30, HISTORY_SHOWN + 1))


def status_lines() -> None:
    """Where the review stands: the student's freshness, the ambiguous texts left, the
    reviewer's pace. Below the buttons: the text comes first."""
    student_freshness()
    ambiguous = queue["ambiguous"]
    left = len(ambiguous) - int(np.isin(ambiguous, decided).sum())
    in_order = int((~np.isin(np.asarray(queue["ids"], dtype=np.int64), decided)).sum())
    # Decided texts with one candidate move the queue but not the bar: the line under it
    # says so (in the bar's own text it pushed the bar down a line after the first one).
    single = len(decided) - (len(ambiguous) - left)      # decided ids are unique
    st.progress((len(ambiguous) - left) / len(ambiguous) if len(ambiguous) else 1.0,
                text=f"{left} of {len(ambiguous)} ambiguous texts (more than one candidate "
                     f"label) still undecided"
                     + (f"; {in_order} text(s) left in this order and filter"
                        if used in NARROW or label is not None else
                        "" if used == "set_size" else "; this order also serves texts with "
                        "one candidate"))
    pace = pace_text([d.created for d in MINE], now=time.time())
    st.caption(f"{len(decided)} decided in the project (labels and skips"
               + (f"; {single} of them with one candidate, which the bar does not count"
                  if single else "") + ") · your pace: " + pace,
               help="Before the first student the queue holds the ambiguous texts, the "
                    "teacher's most hesitant first; once a student exists it holds every "
                    "text, the ones most worth a look first (a text with one candidate can "
                    "come first when the student doubts it). The ambiguous ones are those "
                    "Home counts as left to review; their total follows the current teacher "
                    "run, so it can grow when an update re-teaches the teacher. Your pace "
                    "counts your decisions that stand (not undone) in the last 10 minutes, "
                    "over the time from the first of them to the last (a break before "
                    f"them does not drag it down); it needs {PACE_MIN_DECISIONS}, as a pace "
                    "from fewer reads too high or too low.")


def history() -> None:
    """The reviewer's recent decisions: any can be changed or undone (all kept in the log)."""
    shown = HISTORY_SHOWN
    recent = MINE[:shown + 1]
    more = len(recent) > shown
    recent = recent[:shown]
    if not recent:
        return
    st.subheader("Your recent decisions")
    st.caption("Change a label or undo a decision here; the audit trail keeps every step.")
    texts = {s.id: s.text for s in store.samples(project.id,
                                                 ids=[d.sample_id for d in recent])}
    for d in recent:
        t, l, u = st.columns([6, 3, 1], vertical_alignment="center")
        text = texts.get(d.sample_id, "")
        t.text(text if len(text) <= 110 else text[:107] + "...")
        held = queue["candidates"].get(d.sample_id) or []
        t.caption("Teacher's candidates: " + (", ".join(held) if held else "none"))
        widget = f"hist-{d.id}"
        options = labels + [SKIP]
        l.selectbox("Label", options, key=widget, label_visibility="collapsed",
                    index=options.index(d.label) if d.label in labels else
                    len(labels) if d.action == "skip" else None, placeholder="(label gone)",
                    on_change=change, args=(d.sample_id, widget))
        u.button("Undo", key=f"undo-{d.id}", on_click=undo_one, args=(d.id,),
                 help="Undo this decision; the text comes back into the queue.")
    if more:
        st.button("Show older decisions", key="history-more", on_click=lambda: st.session_state
                  .update(history_shown=shown + 20))


# The first text of the ranked list open for this reviewer, leased to them (renewed on each
# render; a reload resumes it): decided texts and texts another reviewer has open are
# passed over, so two reviewers never see the same text (except the overlap, which two
# reviewers label blind to measure agreement; see candist_core/store/team.py).
decided = store.decided_ids(project.id)
claimed = store.claim_next(project.id, who, queue["ids"])
st.session_state["review_shown"] = claimed
if flash:
    st.toast(flash)
if claimed is None and latest_teacher is None and latest_student is None:
    st.info("Nothing to review yet: the queue fills once the teacher has proposed "
            "candidate labels for the texts.")
    st.page_link("views/annotate.py", label="Annotate the texts (Annotate page)",
                 icon=":material/arrow_forward:", query_params={"project": project.name})
    st.stop()


def left_outside() -> tuple[int, int]:
    """(undecided texts, ambiguous ones among them) that the default order over all labels
    still serves: what a narrower order or a label filter leaves out once it is done."""
    signals = store.review_signals(project.id)
    ids = signals["sample_id"][rank_ambiguous(signals, signal=DEFAULT_SIGNAL)]
    return len(ids), int(np.isin(ids, queue["ambiguous"]).sum())


if claimed is None:
    status_lines()
    default_used = effective_signal(DEFAULT_SIGNAL, has_student=latest_student is not None)
    narrowed = label is not None or used != default_used
    outside, ambiguous_outside = left_outside() if narrowed else (0, 0)
    if outside:
        # The progress bar above counts every ambiguous text: say why some are not here.
        st.info(f"Nothing left to review with this order and filter, but {outside} "
                f"undecided text(s) remain outside them"
                + (f" ({ambiguous_outside} of them ambiguous: more than one candidate label)"
                   if ambiguous_outside else "")
                + ". The default order over all labels brings them here.")
        st.button(f"Go on with the default order ({SIGNAL_NAMES[default_used]}, all "
                  f"labels)", type="primary", key="reset-order", on_click=reset_order,
                  help="Sets Queue order back to its default and the label filter to all "
                       "labels; you can change both again in Queue order at the top.")
    elif latest_student is None and label is None:
        st.success("Every text the teacher hesitated on (more than one candidate label) is "
                   "decided. Once a student is distilled (Distill page), the queue holds every "
                   "text, the ones the student is least sure of first.")
    else:
        st.success("Nothing left to review with this order and filter.")
    elsewhere = sum(1 for lease in store.active_leases(project.id) if lease.who != who)
    if elsewhere:
        st.caption(f"{elsewhere} text(s) are open with other reviewers; one left "
                   "unfinished comes back here when its lease runs out (10 minutes).")
    st.button("Undo last decision", shortcut="U", on_click=undo_last)
    history()
    st.stop()

sample_id = claimed
sample = store.samples(project.id, ids=[sample_id])[0]
candidates = queue["candidates"].get(sample_id, [])
probs = None
if queue["student_run"] is not None:
    pred = store.prediction(queue["student_run"], sample_id)
    if pred is not None:
        probs = {l: float(p) for l, p in zip(labels, pred.probs)}
with st.container(border=True):
    st.text(sample.text)  # plain text, never rendered as HTML or Markdown
    why = [f"the teacher's candidate set holds {len(candidates)} of the {len(labels)} labels"
           if candidates else "the teacher proposed no candidate labels"]
    was_sent = sample_id in queue.get("sent", ())
    if was_sent:
        why.insert(0, "sent from the Student labels page")
    if probs:
        top = max(probs, key=probs.get)
        first = queue.get("teacher_label", {}).get(sample_id)
        if first and first != top:     # what the two disagree on, in words
            why.append(f"the teacher's first choice: {first}")
        said = f"{top}, {probs[top]:.0%}"
        if top not in candidates:
            said += ", outside the teacher's candidates"
        if effective_signal(signal, has_student=True) == "entropy" and not was_sent:
            # A high top probability can still be among the most spread out when the rest
            # is spread over many labels: say what is ranked, not "unsure".
            why.append("the student's probabilities are among the most spread out of the "
                       f"texts left (its top label: {said})")
        else:
            why.append(f"the student's top label: {said}")
    # Two lines' room whatever its length, so the label buttons below stay in place from
    # one text to the next (a walk clicked where the previous text's button had been).
    st.html("<style>.st-key-why-here{min-height:2.75rem}</style>")
    st.container(key="why-here").caption(
        "Why here: " + "; ".join(why) + ".",
        help="Candidate set: the labels the teacher finds possible for this text (outlined "
             "below); its first choice is the one it ranks highest. The student's "
             "probabilities: how likely the student finds each label (the percentages on "
             "the buttons); spread out means they are shared among several labels rather "
             "than on one (high entropy), so a human label teaches it the most.")
    if store.in_overlap(project.id, sample_id) and (
            sign_in_configured() or bool(np.isin(sample_id, decided))):
        # Without sign-in a name is all that tells reviewers apart: said only when another
        # name has labelled the text already (a solo user never sees it).
        st.caption("Overlap text: one other reviewer labels it too, without seeing your "
                   "label, so the team's agreement can be measured (Agreement page)."
                   + ("" if sign_in_configured() else " It was labelled under another "
                      "name; reviewers are told apart by the name in the sidebar."))
buttons = label_buttons(labels, candidates, keys=keys, student_probs=probs)
st.caption("Dashed blue outline: the teacher's candidates, a suggestion (nothing is chosen "
           "until you press a label)"
           + (" · the percentage is the student's probability" if probs else "")
           + ". Each label keeps its key on every text"
           + (f"; the {sum(k is None for k in keys.values())} labels past the first "
              f"{sum(k is not None for k in keys.values())} have no key: type their name "
              f"in the search below." if any(k is None for k in keys.values()) else ".")
           )
# The teacher's candidates are suggestions: a dashed blue outline, not filled like a
# pressed button (walks read filled and tinted ones as already chosen).
# A button clicked on the previous text keeps the focus, and the next text's button in its
# place looked chosen (a walk): no focus colours after a click, only for keyboard focus.
st.html("<style>.st-key-label-buttons button[kind='primary']{background:transparent;"
        "color:inherit;border:2px dashed #3d6fd9}"
        ".st-key-label-buttons button[kind='primary']:hover{background:#eef3fe;"
        "color:inherit}"
        ".st-key-label-buttons button[kind='primary']:focus:not(:focus-visible)"
        "{border-color:#3d6fd9;color:inherit;box-shadow:none}"
        ".st-key-label-buttons button[kind='secondary']:focus:not(:focus-visible)"
        "{border-color:rgba(49,51,63,0.2);color:inherit;box-shadow:none}</style>")
with st.container(horizontal=True, key="label-buttons"):
    for b in buttons:
        st.button(b["caption"], key=f"label-{labels.index(b['label'])}", shortcut=b["key"],
                  type="primary" if b["candidate"] else "secondary",
                  help=descriptions.get(b["label"]) or None, on_click=decide,
                  args=(sample_id, "label", b["label"], b["candidate"]))
if len(buttons) < len(labels) or not candidates:
    widget = f"search-{sample_id}"
    st.selectbox(f"Any of the {len(labels)} labels", labels, index=None, key=widget,
                 placeholder="Type to search, Enter to pick", on_change=pick_searched,
                 args=(sample_id, widget, candidates),
                 help="Every label of the project, not only the teacher's candidates.")
with st.container(horizontal=True, key="actions"):
    st.button("Skip", shortcut="S", key="skip", on_click=decide, args=(sample_id, "skip"),
              help="Leave this text without a label for now (recorded as a skip).")
    st.button("Undo last", shortcut="U", key="undo", on_click=undo_last,
              help="Undo your last decision and show that text again.")
status_lines()
history()
