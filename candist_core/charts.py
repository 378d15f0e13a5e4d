"""Plotly figures of a teacher run and of training curves (pure: data in, figure out)."""
from __future__ import annotations

import math
from collections import Counter
from itertools import combinations

import numpy as np
import plotly.graph_objects as go


def set_size_figure(candidates: list[list[str]]) -> go.Figure:
    sizes = Counter(len(c) for c in candidates)
    xs = sorted(sizes)
    fig = go.Figure(go.Bar(x=[str(x) for x in xs], y=[sizes[x] for x in xs]))
    # A category axis: plotly reads "1", "2" as numbers and would tick at 0.5, 1.5, ...
    fig.update_layout(title="Candidate-set sizes", xaxis_title="labels in the set",
                      yaxis_title="samples", height=320, xaxis_type="category")
    return fig


def label_frequency_figure(candidates: list[list[str]], labels: list[str]) -> go.Figure:
    counts = Counter(l for c in candidates for l in c)
    firsts = Counter(c[0] for c in candidates if c)
    fig = go.Figure([go.Bar(name="in the set", x=labels, y=[counts[l] for l in labels]),
                     go.Bar(name="first choice", x=labels, y=[firsts[l] for l in labels])])
    fig.update_layout(title="Label frequencies", barmode="group", height=360,
                      yaxis_title="texts", xaxis_title="label")
    return fig


def cooccurrence_matrix(candidates: list[list[str]], labels: list[str]) -> np.ndarray:
    """How often two labels share a candidate set (symmetric, zero diagonal)."""
    index = {l: i for i, l in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=int)
    for c in candidates:
        for a, b in combinations([index[l] for l in c if l in index], 2):
            m[a, b] += 1
            m[b, a] += 1
    return m


# Up to this many labels a matrix writes its counts in the cells (beyond, they would be
# too small to read: the colour and the hover say them).
COUNTS_IN_CELLS = 20


def _cell_counts(labels: list[str]) -> str | None:
    return "%{z}" if len(labels) <= COUNTS_IN_CELLS else None


def _count_colorbar(z) -> dict:
    """A colour bar for counts: whole-number ticks (plotly's own choice on a small maximum
    is 0.5 apart, i.e. half texts)."""
    top = int(z.max()) if z.size else 0
    return dict(tick0=0, dtick=max(1, math.ceil(top / 5)), tickformat="d",
                title=dict(text="texts", side="top"))


def cooccurrence_figure(candidates: list[list[str]], labels: list[str]) -> go.Figure:
    z = cooccurrence_matrix(candidates, labels)
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, colorscale="Blues",
                               colorbar=_count_colorbar(z), texttemplate=_cell_counts(labels)))
    # rows top-down in label order, as the columns run left to right
    fig.update_layout(title="Labels the teacher puts in the same set", height=480,
                      yaxis=dict(autorange="reversed"))
    return fig


# Plain names in the legend; the caption gives the CanDist paper's symbol once, for readers
# of the method page (a walk found "|D_out|" in the legend opaque).
REFINERY_CURVES = (("d_out", "outside the set"), ("d_sl", "sharpened"),
                   ("d_hc", "trusted outside the set"))
CURVE_MEANINGS = {
    "loss": "loss: the training loss. A rising loss is expected with CanDist and does not "
            "mean the run is failing: the student's targets come from its own predictions "
            "over each candidate set and get sharper as it learns, and two extra checks "
            "(on blended pairs of texts, and on texts with some words hidden) are added "
            "step by step over the run, so the loss usually rises while the labels "
            "improve. The selection score, not the loss, picks the epoch kept",
    "human_accuracy": "accuracy on human decisions: on the held-out texts people labelled",
    "selection_score": "selection score: how the best epoch is picked without gold labels: "
                       "accuracy on held-out human decisions when there are 20 or more, "
                       "else how often the student's label falls in the teacher's set on a "
                       "held-back 10 % of texts",
    "d_out": "the refinery's groups (right axis), how CanDist's Distribution Refinery sorts "
             "the texts each epoch to set their targets. Outside the set (D_out in the "
             "paper): texts whose student label is not in their candidate set, so the set "
             "probably misses the true label; they get no target unless confident",
    "d_sl": "sharpened (D_sl in the paper): texts inside their set with the smallest loss "
            "for their predicted label (the delta share); their target leans towards the "
            "student's favourite",
    "d_hc": "trusted outside the set (D_hc in the paper): texts outside their set that the "
            "student predicts above tau (a confidence threshold, 0.95 by default); its own "
            "label becomes their target",
}


def drawn(epochs: list[dict], key: str) -> bool:
    """Whether the training charts draw this curve: refinery sets exist only from the
    second epoch of candist, and an empty set draws nothing."""
    ys = [e.get(key) for e in epochs]
    return any(ys) if key.startswith("d_") else any(y is not None for y in ys)


def training_caption(epochs: list[dict]) -> str:
    """What each curve of the training charts means, for the curves it draws only."""
    parts = [text for key, text in CURVE_MEANINGS.items() if drawn(epochs, key)]
    if not any(drawn(epochs, key) for key, _ in REFINERY_CURVES):
        parts.append("no refinery group curves (the groups of texts that CanDist's "
                     "Distribution Refinery treats differently): they exist "
                     "from the second epoch of the candist method only, once 50 "
                     "training steps are done: a small project's run may have none")
    # One line per curve (Markdown list items in st.caption): a paragraph was hard to scan.
    return "\n".join(f"- {part}." for part in parts)


def _mark_kept(fig: go.Figure, kept: int | None) -> None:
    if kept is not None:
        # the words above the plot, where no curve runs under them
        fig.add_vline(x=kept, line_dash="dot", line_color="gray",
                      annotation_text=f"kept: epoch {kept}", annotation_position="top",
                      annotation=dict(yshift=12))


def _layout(fig: go.Figure, title: str, *, epochs: int, **axes) -> go.Figure:
    """Title, the epoch axis and the legend under the plot; ``axes``: the y axes."""
    # one epoch: quarter ticks, so the steps are not drawn over a lone "1"
    fig.update_layout(title=title, xaxis_title="epoch", height=360,
                      xaxis=dict(dtick=1 if epochs > 1 else 0.25, rangemode="tozero"),
                      legend=dict(orientation="h", yanchor="top", y=-0.22, x=0),
                      margin=dict(t=70, b=10, l=10, r=10), **axes)
    return fig


def loss_figure(epochs: list[dict], kept: int | None) -> go.Figure:
    """The training loss of every step (step i of n in epoch k at x = k - 1 + i/n) and
    each epoch's mean, on an axis of their own."""
    fig = go.Figure()
    steps_x, steps_y = [], []
    for e in epochs:
        losses = e.get("step_losses") or []
        steps_x += [e["epoch"] - 1 + (i + 1) / len(losses) for i in range(len(losses))]
        steps_y += losses
    if steps_y:
        fig.add_trace(go.Scatter(x=steps_x, y=steps_y, mode="lines", name="each step",
                                 line=dict(width=1)))
    if drawn(epochs, "loss"):
        fig.add_trace(go.Scatter(x=[e["epoch"] for e in epochs],
                                 y=[e.get("loss") for e in epochs],
                                 mode="lines+markers", name="epoch mean"))
    _mark_kept(fig, kept)
    return _layout(fig, "Training loss", epochs=len(epochs), yaxis=dict(title="loss"))


def scored(epochs: list[dict]) -> bool:
    """Whether the epochs had held-back texts to score on (else the selection score is
    only the epoch's number, and the last epoch is kept)."""
    return any(e.get("selection_n") for e in epochs)


def charted_epochs(epochs: list[dict]) -> list[dict]:
    """The epochs without the curves :func:`score_figure` leaves out, for the caption: the
    accuracy on human decisions when it is the selection score itself, and a selection
    score that is only the epoch's number."""
    drop = set() if scored(epochs) else {"selection_score"}
    if all(e.get("human_accuracy") == e.get("selection_score") for e in epochs):
        drop.add("human_accuracy")
    return [{k: v for k, v in e.items() if k not in drop} for e in epochs]


def score_figure(epochs: list[dict], kept: int | None) -> go.Figure | None:
    """The selection score (a share of texts, left axis) and the refinery's set sizes
    (texts, right axis) after each epoch; None when there is neither."""
    shown = charted_epochs(epochs)
    xs = [e["epoch"] for e in shown]
    fig = go.Figure()
    for key, name in (("selection_score", "selection score"),
                      ("human_accuracy", "accuracy on human decisions")):
        if drawn(shown, key):
            fig.add_trace(go.Scatter(x=xs, y=[e.get(key) for e in shown],
                                     mode="lines+markers", name=name))
    shares = len(fig.data)
    for key, name in REFINERY_CURVES:
        if drawn(shown, key):
            fig.add_trace(go.Scatter(x=xs, y=[e.get(key) for e in shown],
                                     mode="lines+markers", name=name,
                                     yaxis="y2" if shares else "y"))
    if not fig.data:
        return None
    texts_axis = dict(title="texts in the set", rangemode="nonnegative", tickformat="d")
    share_axis = dict(title="share of held-back texts", tickformat=".0%", range=[0, 1.05])
    if shares and len(fig.data) > shares:
        title, axes = ("After each epoch: score (left), refinery sets (right)",
                       dict(yaxis=share_axis,
                            yaxis2=dict(overlaying="y", side="right", **texts_axis)))
    elif shares:
        title, axes = "Selection score after each epoch", dict(yaxis=share_axis)
    else:
        title, axes = "Refinery sets after each epoch", dict(yaxis=texts_axis)
    _mark_kept(fig, kept)
    return _layout(fig, title, epochs=len(epochs), **axes)


def confusion_matrix(counts: list[tuple[str, str, int]], labels: list[str]) -> np.ndarray:
    """Rows: reference label, columns: student label, from (student, reference, n)."""
    index = {l: i for i, l in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=int)
    for p, r, n in counts:
        if p in index and r in index:
            m[index[r], index[p]] += n
    return m


def confusion_figure(counts: list[tuple[str, str, int]], labels: list[str], *,
                     title: str, reference: str = "reference") -> go.Figure:
    z = confusion_matrix(counts, labels)
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, colorscale="Blues",
                               colorbar=_count_colorbar(z), texttemplate=_cell_counts(labels)))
    fig.update_layout(title=title, xaxis_title="student", yaxis_title=reference, height=480,
                      yaxis=dict(autorange="reversed"))
    return fig
