"""Plotly figures of a teacher run and of training curves (pure: data in, figure out)."""
from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import plotly.graph_objects as go


def set_size_figure(candidates: list[list[str]]) -> go.Figure:
    sizes = Counter(len(c) for c in candidates)
    xs = sorted(sizes)
    fig = go.Figure(go.Bar(x=[str(x) for x in xs], y=[sizes[x] for x in xs]))
    fig.update_layout(title="Candidate-set sizes", xaxis_title="labels in the set",
                      yaxis_title="samples", height=320)
    return fig


def label_frequency_figure(candidates: list[list[str]], labels: list[str]) -> go.Figure:
    counts = Counter(l for c in candidates for l in c)
    firsts = Counter(c[0] for c in candidates if c)
    fig = go.Figure([go.Bar(name="in the set", x=labels, y=[counts[l] for l in labels]),
                     go.Bar(name="first choice", x=labels, y=[firsts[l] for l in labels])])
    fig.update_layout(title="Label frequencies", barmode="group", height=360)
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


def cooccurrence_figure(candidates: list[list[str]], labels: list[str]) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=cooccurrence_matrix(candidates, labels), x=labels, y=labels,
                               colorscale="Blues"))
    fig.update_layout(title="Labels the teacher puts in the same set", height=480)
    return fig


def training_figure(epochs: list[dict]) -> go.Figure:
    fig = go.Figure()
    xs = [e["epoch"] for e in epochs]
    for key, name in (("loss", "loss"), ("human_accuracy", "accuracy on human decisions"),
                      ("selection_score", "selection score")):
        ys = [e.get(key) for e in epochs]
        if any(y is not None for y in ys):
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name))
    for key, name in (("d_out", "|D_out|"), ("d_sl", "|D_sl|"), ("d_hc", "|D_hc|")):
        fig.add_trace(go.Scatter(x=xs, y=[e.get(key) for e in epochs], mode="lines+markers",
                                 name=name, yaxis="y2"))
    fig.update_layout(title="Training", xaxis_title="epoch", height=380,
                      yaxis2=dict(overlaying="y", side="right", title="samples"))
    return fig


def confusion_matrix(counts: list[tuple[str, str, int]], labels: list[str]) -> np.ndarray:
    """Rows: reference label, columns: student label, from (student, reference, n)."""
    index = {l: i for i, l in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=int)
    for p, r, n in counts:
        if p in index and r in index:
            m[index[r], index[p]] += n
    return m


def confusion_figure(counts: list[tuple[str, str, int]], labels: list[str], *,
                     title: str) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=confusion_matrix(counts, labels), x=labels, y=labels,
                               colorscale="Blues"))
    fig.update_layout(title=title, xaxis_title="student", yaxis_title="reference", height=480)
    return fig
