"""The review queue: which samples a person should look at first (pure, over arrays).

Signals, each ranking the undecided samples most-ambiguous first:
``set_size`` (largest candidate set), ``entropy`` (student's), ``disagreement`` (teacher's
label differs from the student's, least confident first), ``out_of_candidate`` (student's
label outside the teacher's set, most confident first: likely teacher misses) and
``low_confidence`` (student's, or the teacher's before there is a student).
"""
from __future__ import annotations

import numpy as np

SIGNALS = ("set_size", "entropy", "disagreement", "out_of_candidate", "low_confidence")

def rank_ambiguous(signals: dict, *, signal: str = "set_size", label: str | None = None,
                   include_decided: bool = False) -> np.ndarray:
    """Positions (into the ``signals`` arrays) in review order.

    ``signals`` holds ``Store.review_signals`` columns. ``label`` keeps samples whose
    candidate set or student label includes it. Samples with a current decision are left
    out unless ``include_decided``; samples that are not ambiguous by the chosen signal
    (a one-label set, teacher and student agreeing, ...) are left out too.
    """
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {', '.join(SIGNALS)}, got {signal!r}")
    n = len(signals["sample_id"])
    sizes = np.array([len(c) for c in signals["candidates"]])
    has_student = ~np.isnan(signals["student_confidence"])
    conf = np.where(has_student, signals["student_confidence"],
                    np.nan_to_num(signals["teacher_confidence"], nan=1.0))
    entropy = np.nan_to_num(signals["entropy"], nan=0.0)
    keep = np.ones(n, dtype=bool) if include_decided else ~signals["decided"]
    if label is not None:
        keep &= np.array([label in c or s == label for c, s in
                          zip(signals["candidates"], signals["student_label"])], dtype=bool)
    if signal == "set_size":
        keep &= sizes > 1
        order = np.lexsort((-entropy, -sizes))
    elif signal == "entropy":
        keep &= has_student
        order = np.lexsort((-sizes, -entropy))
    elif signal == "disagreement":
        disagree = np.array([t is not None and s is not None and t != s for t, s in
                             zip(signals["teacher_label"], signals["student_label"])])
        keep &= disagree
        order = np.argsort(conf, kind="stable")
    elif signal == "out_of_candidate":
        keep &= signals["out_of_candidate"]
        order = np.argsort(-conf, kind="stable")
    else:
        keep &= sizes > 0
        order = np.argsort(conf, kind="stable")
    return order[keep[order]]


# Up to this many labels the Review page shows a button for every label; beyond it, the
# candidates' buttons and a search over all labels (Banking77's 77 buttons would not fit).
ALL_BUTTONS_UP_TO = 12


def label_buttons(labels: list[str], candidates: list[str], *,
                  keys: dict[str, str | None],
                  student_probs: dict[str, float] | None = None,
                  all_up_to: int = ALL_BUTTONS_UP_TO) -> list[dict]:
    """The Review page's label buttons, always in schema order so that neither a label's
    place nor its key changes from one text to the next.

    Each: ``label``, ``caption`` (with the student's probability when there is a
    student), ``key`` (the label's fixed key or None) and ``candidate`` (in the teacher's
    set: highlighted, never moved). Every label when there are at most ``all_up_to``,
    else only the candidates (the page adds a search over all labels).
    """
    chosen = set(candidates)
    out = []
    for name in labels:
        if len(labels) > all_up_to and name not in chosen:
            continue
        caption = name
        if student_probs is not None and name in student_probs:
            caption = f"{name} · {student_probs[name]:.0%}"
        out.append({"label": name, "caption": caption, "key": keys.get(name),
                    "candidate": name in chosen})
    return out


def candidate_buttons(candidates: list[str],
                      student_probs: dict[str, float] | None = None) -> list[tuple[str, str]]:
    """(label, caption) for the one-click buttons: the teacher's candidates in its order,
    captioned with the student's probability when there is a student."""
    out = []
    for name in candidates:
        caption = name
        if student_probs is not None and name in student_probs:
            caption = f"{name} ({student_probs[name]:.0%})"
        out.append((name, caption))
    return out


def other_labels(candidates: list[str], all_labels: list[str]) -> list[str]:
    return [l for l in all_labels if l not in candidates]


def decisions_per_minute(timestamps: list[float]) -> float:
    """Rate over the reviewer's recent decisions (seconds since epoch, oldest first)."""
    if len(timestamps) < 2:
        return 0.0
    span = timestamps[-1] - timestamps[0]
    return 60.0 * (len(timestamps) - 1) / span if span > 0 else 0.0
