"""Review: the ambiguous samples, most ambiguous first; one keystroke per decision.

Keys: 1-9 pick the n-th candidate, 0 opens "none of these", S skips, U undoes. Every
decision is written to the database the moment it is made.
"""
import time

import numpy as np
import streamlit as st

from candist_core.review import SIGNALS, candidate_buttons, decisions_per_minute, \
    other_labels, rank_ambiguous
from views.common import require_project

store, project = require_project()
st.title("Review")
labels = store.label_schema(project.id).names
who = st.sidebar.text_input("Reviewer", value=st.session_state.get("reviewer", "reviewer"))
st.session_state["reviewer"] = who
SIGNAL_NAMES = {"set_size": "Candidate-set size", "entropy": "Student entropy",
                "disagreement": "Teacher/student disagreement",
                "out_of_candidate": "Student outside the candidates",
                "low_confidence": "Low confidence"}
c1, c2 = st.columns(2)
signal = c1.selectbox("Order by", SIGNALS, format_func=SIGNAL_NAMES.get)
label_filter = c2.selectbox("Only samples involving", ["(all labels)"] + labels)
label = None if label_filter == "(all labels)" else label_filter


def load_queue() -> dict:
    """The ranked sample ids (samples sent from the Predictions page first)."""
    signals = store.review_signals(project.id)
    ranked = signals["sample_id"][rank_ambiguous(signals, signal=signal, label=label)].tolist()
    first = st.session_state.pop("review_first", [])
    sent = set(first)
    return {"ids": first + [i for i in ranked if i not in sent],
            "candidates": dict(zip(signals["sample_id"].tolist(), signals["candidates"])),
            "teacher_run": signals["teacher_run"], "student_run": signals["student_run"]}


queue_key = (project.id, signal, label)
if st.session_state.get("queue_key") != queue_key or st.session_state.get("queue") is None:
    st.session_state["queue"] = load_queue()
    st.session_state["queue_key"] = queue_key
    st.session_state["queue_pos"] = 0
queue = st.session_state["queue"]
times = st.session_state.setdefault("decision_times", [])
flash = st.session_state.pop("flash", None)


def decide(sample_id: int, action: str, label: str | None = None,
           in_candidates: bool | None = None) -> None:
    store.record_decision(project.id, sample_id, action=action, label=label,
                          in_candidates=in_candidates, who=who)
    st.session_state["queue_pos"] += 1
    st.session_state["none_open"] = False
    times.append(time.time())
    del times[:-30]
    st.session_state["flash"] = f"Saved: {label or 'skipped'}."


def undo() -> None:
    undone = store.undo_decision(project.id, who=who)
    if undone is None:
        st.session_state["flash"] = "Nothing to undo."
        return
    ids = queue["ids"]
    sid = undone.sample_id
    if sid in ids:
        st.session_state["queue_pos"] = min(st.session_state["queue_pos"], ids.index(sid))
    else:
        ids.insert(st.session_state["queue_pos"], sid)
    st.session_state["flash"] = "Undone."


# Skip samples decided elsewhere (another tab, another reviewer) since the queue was built.
current = store.current_decisions(project.id)
pos = st.session_state["queue_pos"]
while pos < len(queue["ids"]) and queue["ids"][pos] in current:
    pos += 1
st.session_state["queue_pos"] = pos
remaining = len(queue["ids"]) - pos
done = len(current)
st.caption(f"{remaining} to review in this queue - {done} decided in the project - "
           f"{decisions_per_minute(times):.1f} decisions/minute")
if flash:
    st.toast(flash)
if remaining <= 0:
    st.success("Nothing left to review with this signal and filter.")
    st.button("Undo last decision", shortcut="U", on_click=undo)
    st.stop()

sample_id = queue["ids"][pos]
sample = store.samples(project.id, ids=[sample_id])[0]
candidates = queue["candidates"].get(sample_id, [])
probs = None
if queue["student_run"] is not None:
    pred = store.prediction(queue["student_run"], sample_id)
    if pred is not None:
        probs = {l: float(p) for l, p in zip(labels, pred.probs)}
with st.container(border=True):
    st.text(sample.text)  # plain text, never rendered as HTML or Markdown
    why = [f"the teacher kept {len(candidates)} of {len(labels)} labels"]
    if probs:
        top = max(probs, key=probs.get)
        why.append(f"the student says {top} ({probs[top]:.0%})"
                   + (", outside the teacher's candidates" if top not in candidates else ""))
    st.caption("Why here: " + "; ".join(why) + ".")
buttons = candidate_buttons(candidates, probs)
cols = st.columns(max(len(buttons), 1) + 3)
for n, (name, caption) in enumerate(buttons[:9], start=1):
    cols[n - 1].button(f"{caption}", key=f"cand-{n}", shortcut=str(n), type="primary",
                       on_click=decide, args=(sample_id, "label", name, True))
cols[-3].button("None of these", shortcut="0", key="none",
                on_click=lambda: st.session_state.update(none_open=True))
cols[-2].button("Skip", shortcut="S", key="skip", on_click=decide,
                args=(sample_id, "skip"))
cols[-1].button("Undo", shortcut="U", key="undo", on_click=undo)
if st.session_state.get("none_open") or not candidates:
    others = other_labels(candidates, labels)
    choice = st.selectbox("Any other label", others, index=None, key=f"other-{sample_id}",
                          placeholder="Type to search the labels")
    if choice:
        decide(sample_id, "label", choice, False)
        st.rerun()
progress = done / max(done + remaining, 1)
st.progress(float(np.clip(progress, 0, 1)))
