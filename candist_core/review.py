"""The review queue: which samples a person should look at first (pure, over arrays).

Signals, each ranking the undecided samples most-ambiguous first:
``set_size`` (largest candidate set), ``entropy`` (student's), ``disagreement`` (teacher's
label differs from the student's, least confident first), ``out_of_candidate`` (student's
label outside the teacher's set, most confident first: likely teacher misses) and
``low_confidence`` (student's, or the teacher's before there is a student),
``label_issue`` (cleanlab's label-quality score of the teacher's label from out-of-sample
probabilities, lowest first: likely teacher mistakes), ``likely_wrong`` (the out-of-sample
probability of the student's label, lowest first: the exported labels most likely wrong)
and ``random`` (a fixed shuffle: what Label Studio does by default, and a representative
sample for the student).
"""
from __future__ import annotations

from datetime import datetime

import numpy as np

SIGNALS = ("set_size", "entropy", "disagreement", "out_of_candidate", "low_confidence",
           "label_issue", "likely_wrong", "random")
# Chosen by bench/learning_curve.py (bench/RESULTS.md, session 7): with the continuous
# student updating every 50 decisions, student entropy was at or above random order at every
# round up to 400 decisions on all three shared datasets, the only order that was. Session 9
# (the update re-teaches the teacher): still the best from 100 decisions on; two
# class-balanced variants won TREC's first round and lost Banking77's, so it stays.
DEFAULT_SIGNAL = "entropy"
DEFAULT_REASON = ("Default order: the texts the student is least sure about (highest "
                  "entropy) first. In our measurements (a simulated reviewer on three public "
                  "datasets) it fixed more exported labels per decision than random order or "
                  "any other order here. Before the first student it is the candidate-set "
                  "order: the texts the teacher hesitated on most.")


def effective_signal(signal: str, *, has_student: bool) -> str:
    """The order that is used: ``entropy`` needs a student; before the first one it is
    ``set_size``, the teacher's hesitation."""
    return "set_size" if signal == "entropy" and not has_student else signal


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
    signal = effective_signal(signal, has_student=bool(has_student.any()))
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
    elif signal == "label_issue":
        issue = signals.get("label_issue")
        issue = np.full(n, np.nan) if issue is None else issue
        keep &= ~np.isnan(issue)
        order = np.argsort(np.nan_to_num(issue, nan=np.inf), kind="stable")
    elif signal == "likely_wrong":
        oos = signals.get("oos_confidence")
        oos = np.full(n, np.nan) if oos is None else oos
        keep &= ~np.isnan(oos)
        order = np.argsort(np.nan_to_num(oos, nan=np.inf), kind="stable")
    elif signal == "random":
        keep &= sizes > 0
        order = np.argsort(shuffle_keys(signals["sample_id"]), kind="stable")
    else:
        keep &= sizes > 0
        order = np.argsort(conf, kind="stable")
    return order[keep[order]]


def shuffle_keys(sample_ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """A pseudo-random key per sample id (splitmix64): a shuffle that keeps every text's
    place when others are imported or decided."""
    x = (np.asarray(sample_ids, dtype=np.uint64) + np.uint64(seed + 1)) \
        * np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


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


# Decisions a pace needs: from two, one quick pair read as 20 decisions a minute (a walk).
PACE_MIN_DECISIONS = 5


def _recent_times(created: list[str], *, now: float, window: float) -> list[float]:
    times = []
    for stamp in created:
        try:
            t = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            continue
        if now - window <= t <= now + 1:
            times.append(t)
    return sorted(times)


def recent_pace(created: list[str], *, now: float, window: float = 600.0,
                least: int = PACE_MIN_DECISIONS) -> float:
    """Decisions a minute over the ones made in the last ``window`` seconds before ``now``
    (``created``: ISO times, as the store writes them); a break does not drag it down.
    0 (not known yet) with fewer than ``least`` of them."""
    times = _recent_times(created, now=now, window=window)
    return decisions_per_minute(times) if len(times) >= least else 0.0


def pace_text(created: list[str], *, now: float, window: float = 600.0,
              least: int = PACE_MIN_DECISIONS) -> str:
    """The pace as the Review page says it, with what it was measured on: "12.0 decisions
    a minute (8 decisions in the 40 s after the first of your last 9)". A walk read "13.9
    decisions/minute over the last 10 minutes" after 9 decisions in 40 s as 9 in 10
    minutes."""
    times = _recent_times(created, now=now, window=window)   # parsed once for both
    rate = decisions_per_minute(times) if len(times) >= least else 0.0
    if not rate:
        return f"shown after {least} decisions within {window / 60:.0f} minutes"
    span = times[-1] - times[0]
    over = f"{span:.0f} s" if span < 90 else f"{span / 60:.0f} min"
    # The rate counts the gaps: n decisions give n - 1 in the span (a walk checked 5 in
    # 40 s against the 6.0 shown), so the text says so.
    return (f"{rate:.1f} decisions a minute ({len(times) - 1} decisions in the {over} after "
            f"the first of your last {len(times)})")


def decisions_per_minute(timestamps: list[float]) -> float:
    """Rate over the reviewer's recent decisions (seconds since epoch, oldest first)."""
    if len(timestamps) < 2:
        return 0.0
    span = timestamps[-1] - timestamps[0]
    return 60.0 * (len(timestamps) - 1) / span if span > 0 else 0.0
