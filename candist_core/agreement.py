"""Agreement between reviewers (issue 15): how far do people agree on the overlap, texts
labelled by two reviewers blind to each other?

Pure functions over lists and arrays (no SQLite); :func:`agreement_report` reads the store
once and hands the rows to them.

- **Cohen's kappa** (a pair of reviewers) and **Fleiss' kappa** (any number of raters per
  text): agreement beyond chance, ``(p_o - p_e) / (1 - p_e)``; 1 = perfect, 0 = what chance
  alone gives, below 0 = worse than chance. Intervals: 95 % percentile bootstrap over
  texts (1,000 resamples, seeded, so the same data always give the same interval).
  When every rating uses one label (``p_e = 1``) kappa is 0/0; it is reported as 1 when
  the raters agree everywhere (as they then must).
- **Specific agreement** per label: of the ratings that used the label, the share whose
  text's other rater(s) used it too (Uebersax's positive specific agreement).
- **A reviewer vs the consensus** (the majority label of the other raters of the text,
  texts with a tie left out), **vs gold** (the import's gold labels) and **vs the audit**
  (another person's blind audit label): proportions with 95 % Wilson intervals
  (:func:`candist_core.audit.wilson`).
- **Decisions per hour**: a reviewer's decisions over the time between them, gaps over
  10 minutes counted as breaks (left out).
- **Conflicts**: texts whose raters disagree and that no owner resolved yet.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from itertools import combinations
from typing import Sequence

import numpy as np

from .audit import Estimate, wilson

BOOTSTRAP = 1000
SEED = 0
CONFIDENCE = 0.95
INTERVAL = "95% percentile bootstrap over texts (1,000 resamples, seed 0)"
BREAK_SECONDS = 600.0


# ---------------------------------------------------------------------- kappas
def cohen_kappa(a: Sequence[str], b: Sequence[str], *, labels: Sequence[str],
                resamples: int = BOOTSTRAP, seed: int = SEED) -> Estimate:
    """Cohen's kappa of two raters over the same ``n`` texts, with a 95 % bootstrap
    interval. ``a``, ``b``: the two raters' labels (length n, n >= 1); ``labels``: every
    label they may use (a label outside it is added at the end)."""
    if len(a) != len(b):
        raise ValueError(f"a and b must rate the same texts, got {len(a)} and {len(b)}.")
    if not len(a):
        raise ValueError("Cohen's kappa needs at least one text rated by both.")
    index = _index(labels, [*a, *b])
    ia = np.array([index[x] for x in a])
    ib = np.array([index[x] for x in b])
    k = len(index)
    one_a, one_b = np.eye(k)[ia], np.eye(k)[ib]
    agree = (ia == ib).astype(float)
    value = float(_cohen(np.array([agree.mean()]), one_a.mean(0)[None], one_b.mean(0)[None])[0])

    def stat(w: np.ndarray) -> np.ndarray:   # w: (B, n) resample weights summing to n
        n = w.shape[1]
        return _cohen(w @ agree / n, w @ one_a / n, w @ one_b / n)

    low, high = _bootstrap(stat, len(a), resamples, seed)
    return Estimate(value, min(low, value), max(high, value), len(a))


def _cohen(p_o: np.ndarray, p_a: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    p_o = p_o.reshape(-1)
    p_e = (p_a * p_b).sum(-1)
    return _kappa(p_o, p_e)


def fleiss_kappa(ratings, *, resamples: int = BOOTSTRAP, seed: int = SEED) -> Estimate:
    """Fleiss' kappa with a 95 % bootstrap interval. ``ratings``: an (n_texts, n_labels)
    array of counts, row i holding how many raters gave text i each label; rows with fewer
    than 2 ratings are left out. Rows may have different numbers of raters (each text's
    agreement is its own share of agreeing rater pairs); with equal numbers it is the
    textbook formula (``statsmodels.stats.inter_rater.fleiss_kappa``)."""
    counts = np.asarray(ratings, dtype=float)
    if counts.ndim != 2:
        raise ValueError("ratings must be a 2-D array of counts (texts x labels).")
    counts = counts[counts.sum(1) >= 2]
    if not len(counts):
        raise ValueError("Fleiss' kappa needs at least one text with two ratings.")
    n_i = counts.sum(1)
    p_i = ((counts * (counts - 1)).sum(1)) / (n_i * (n_i - 1))

    def stat(w: np.ndarray) -> np.ndarray:
        cols = w @ counts
        p_j = cols / cols.sum(1, keepdims=True)
        return _kappa(w @ p_i / w.shape[1], (p_j ** 2).sum(1))

    value = float(stat(np.ones((1, len(counts))))[0])
    low, high = _bootstrap(stat, len(counts), resamples, seed)
    return Estimate(value, min(low, value), max(high, value), len(counts))


def _kappa(p_o: np.ndarray, p_e: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (p_o - p_e) / (1 - p_e)
    return np.where(np.isclose(p_e, 1.0), np.where(np.isclose(p_o, 1.0), 1.0, 0.0), out)


def _bootstrap(stat, n: int, resamples: int, seed: int) -> tuple[float, float]:
    """Percentile interval of ``stat`` over ``resamples`` resamples of the n texts (drawn
    as multinomial weights, in batches to bound memory)."""
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, resamples, 200):
        size = min(200, resamples - start)
        values.append(stat(rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(float)))
    values = np.concatenate(values)
    tail = (1 - CONFIDENCE) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def _index(labels: Sequence[str], seen: Sequence[str]) -> dict[str, int]:
    index = {label: i for i, label in enumerate(labels)}
    for label in seen:
        index.setdefault(label, len(index))
    return index


# ---------------------------------------------------------------------- per text
def group_ratings(rows: Sequence[tuple[int, str, str]]) -> dict[int, dict[str, str]]:
    """(sample id, who, label) rows -> sample id -> {who: label}."""
    out: dict[int, dict[str, str]] = defaultdict(dict)
    for sid, who, label in rows:
        out[sid][who] = label
    return dict(out)


def count_table(items: dict[int, dict[str, str]], labels: Sequence[str]) -> np.ndarray:
    """Texts with 2+ raters -> the (n_texts, n_labels) count table of Fleiss' kappa."""
    multi = [r for r in items.values() if len(r) >= 2]
    index = _index(labels, [x for r in multi for x in r.values()])
    table = np.zeros((len(multi), len(index)))
    for i, raters in enumerate(multi):
        for label in raters.values():
            table[i, index[label]] += 1
    return table


def specific_agreement(items: dict[int, dict[str, str]], labels: Sequence[str]
                       ) -> dict[str, dict]:
    """Per label: of the ratings with the label (on texts with 2+ raters), the share of
    the other raters of the text who used it too: sum n_ij(n_ij - 1) / sum n_ij(n_i - 1).
    ``{label: {"value": share or None, "ratings": n}}``."""
    num, den, used = Counter(), Counter(), Counter()
    for raters in items.values():
        if len(raters) < 2:
            continue
        n = len(raters)
        for label, k in Counter(raters.values()).items():
            num[label] += k * (k - 1)
            den[label] += k * (n - 1)
            used[label] += k
    names = list(labels) + sorted(set(used) - set(labels))
    return {label: {"value": num[label] / den[label] if den[label] else None,
                    "ratings": used[label]} for label in names}


def consensus_agreement(items: dict[int, dict[str, str]]) -> dict[str, Estimate | None]:
    """Each reviewer vs the majority label of the other raters of each text they rated
    (texts where the others tie are left out); Wilson intervals."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for raters in items.values():
        for who, label in raters.items():
            others = Counter(l for w, l in raters.items() if w != who).most_common()
            if not others or (len(others) > 1 and others[0][1] == others[1][1]):
                continue
            hits[who].append(label == others[0][0])
    return {who: wilson(sum(h), len(h)) for who, h in sorted(hits.items())}


def reference_agreement(rows: Sequence[tuple[int, str, str]], reference: dict[int, str],
                        *, not_by: dict[int, str] | None = None) -> dict[str, Estimate]:
    """Each reviewer's labels vs a reference label per text (gold, or the audit),
    Wilson intervals; texts whose reference was made by the same person (``not_by``:
    sample id -> who made the reference) are left out."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for sid, who, label in rows:
        if sid in reference and (not_by is None or not_by.get(sid) != who):
            hits[who].append(label == reference[sid])
    return {who: wilson(sum(h), len(h)) for who, h in sorted(hits.items())}


def decisions_per_hour(times: Sequence[tuple[str, str]], *,
                       break_seconds: float = BREAK_SECONDS) -> dict[str, float | None]:
    """(who, ISO timestamp) oldest first -> decisions per hour of each reviewer, from the
    gaps between their consecutive decisions; gaps over ``break_seconds`` are breaks and
    left out. None with fewer than two decisions in a sitting."""
    stamps: dict[str, list[float]] = defaultdict(list)
    for who, created in times:
        stamps[who].append(datetime.fromisoformat(created).timestamp())
    out = {}
    for who, ts in sorted(stamps.items()):
        gaps = [b - a for a, b in zip(ts, ts[1:]) if 0 <= b - a <= break_seconds]
        busy = sum(gaps)
        out[who] = len(gaps) / busy * 3600 if gaps and busy > 0 else None
    return out


def conflicts(items: dict[int, dict[str, str]], resolved: dict[int, str]) -> list[dict]:
    """Texts with 2+ raters who disagree and no current resolution, by sample id:
    ``{"sample_id", "labels": {who: label}}``."""
    return [{"sample_id": sid, "labels": dict(sorted(raters.items()))}
            for sid, raters in sorted(items.items())
            if len(raters) >= 2 and len(set(raters.values())) > 1 and sid not in resolved]


def pair_kappas(items: dict[int, dict[str, str]], labels: Sequence[str], *,
                minimum: int = 2) -> list[dict]:
    """Cohen's kappa of every pair of reviewers who rated at least ``minimum`` texts in
    common: ``{"a", "b", "n", "estimate"}``."""
    raters = sorted({w for r in items.values() for w in r})
    out = []
    for a, b in combinations(raters, 2):
        both = [(r[a], r[b]) for r in items.values() if a in r and b in r]
        if len(both) >= minimum:
            out.append({"a": a, "b": b, "n": len(both), "estimate": cohen_kappa(
                [x for x, _ in both], [y for _, y in both], labels=labels)})
    return out


# ---------------------------------------------------------------------- the report
def open_conflicts(store, project_id: int) -> list[dict]:
    """The conflicts not yet resolved (:func:`conflicts`), without the kappas: cheap
    enough for every page that leads to an export."""
    return conflicts(group_ratings(store.rater_labels(project_id)),
                     store.resolutions(project_id))


def agreement_report(store, project_id: int) -> dict | None:
    """Everything the Agreement page and ``agreement`` show; None when no text has two
    raters yet."""
    rows = store.rater_labels(project_id)
    items = group_ratings(rows)
    multi = {sid: r for sid, r in items.items() if len(r) >= 2}
    if not multi:
        return None
    labels = store.label_schema(project_id).names
    audit = {sid: d for sid, d in store.audit_decisions(project_id).items()
             if d.action == "label"}
    return {
        "items": len(multi),
        "raters": sorted({w for r in multi.values() for w in r}),
        "interval": INTERVAL,
        "fleiss_kappa": fleiss_kappa(count_table(multi, labels)),
        "cohen_kappa": pair_kappas(multi, labels),
        "specific_agreement": specific_agreement(multi, labels),
        "vs_consensus": consensus_agreement(multi),
        "vs_gold": reference_agreement(rows, store.gold_labels(project_id)),
        "vs_audit": reference_agreement(rows, {s: d.label for s, d in audit.items()},
                                        not_by={s: d.who for s, d in audit.items()}),
        "per_hour": decisions_per_hour(store.rater_decision_times(project_id)),
        "conflicts": conflicts(multi, store.resolutions(project_id)),
        "overlap_share": store.overlap_share(project_id),
    }


def agreement_json(report: dict | None) -> dict | None:
    """The ``agreement`` key of ``metrics --json`` (None without two raters on a text)."""
    if report is None:
        return None
    return {
        "items": report["items"], "raters": report["raters"],
        "fleiss_kappa": report["fleiss_kappa"].to_dict(),
        "cohen_kappa": [{"a": p["a"], "b": p["b"], "n": p["n"], **p["estimate"].to_dict()}
                        for p in report["cohen_kappa"]],
        "conflicts": len(report["conflicts"]),
    }
