"""The learning loop's pure pieces: a student head that learns from new human decisions in
seconds, and the out-of-sample probabilities the label-issue signal ranks on.

A full distillation fine-tunes the encoder: minutes on a laptop, so it cannot follow a
reviewer. An *update* keeps the encoder of the latest full run and retrains only its head
on that run's stored text embeddings (:mod:`student_state`): warm-started from the latest
head, on the current targets (the teacher's candidate sets refined by Distribution
Refinery exactly as in a full run, human labels fixed as one-hot), full batch. At 2,000
texts that is well under a second of arithmetic on a CPU; bench/learning_curve.py measures
it against a full re-distillation with the same decisions.

The label-issue signal follows confident learning (cleanlab): a text's teacher label is
scored against probabilities from a model that never saw that text. A student's own
probabilities are not that (it was trained on the text), so :func:`out_of_sample_probs`
fits K logistic heads on the embeddings, each scoring the fold it left out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .refinery import Components, partition, refined_targets, soft_cross_entropy


@dataclass(frozen=True)
class UpdateConfig:
    """Settings of a head update. ``rounds`` re-partitions the samples (Algorithm 1) that
    many times, ``steps`` full-batch AdamW steps each; the learning rate is the usual one
    for a linear probe on sentence embeddings."""

    rounds: int = 4
    steps: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.01
    delta: float = 0.5
    gamma: float = 0.85
    tau: float = 0.95
    folds: int = 5                 # out-of-sample probabilities for the label-issue signal
    # The human labels weigh as much in the loss as all of the teacher's targets together
    # (each source averaged apart, as a supervised and an unsupervised loss are in
    # semi-supervised learning): 50 decisions among 2,000 texts would otherwise be 2.5 % of
    # the loss and barely move the head. False: a human row weighs as much as a teacher row,
    # as in a full distillation.
    balance_humans: bool = True
    seed: int = 0


@dataclass
class Head:
    """A student's classifier head as plain arrays: ``logits = f(x) @ weight.T + bias``
    with ``f(x) = scale * x / |x|`` for a cosine head, ``x`` otherwise (dropout is off in
    eval mode, so this is exactly :meth:`StudentModel.classify`)."""

    weight: np.ndarray             # (C, hidden)
    bias: np.ndarray               # (C,)
    cosine: bool
    scale: float = 20.0
    # Divides the logits (see :func:`calibrate`); the weights stay as trained, so the next
    # update warm-starts from what was learned, not from a softened copy.
    temperature: float = 1.0

    def features(self, pooled: torch.Tensor) -> torch.Tensor:
        pooled = pooled.float()
        return F.normalize(pooled, dim=-1) * self.scale if self.cosine else pooled

    def logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """The trained logits, before the temperature."""
        w, b = torch.from_numpy(self.weight).float(), torch.from_numpy(self.bias).float()
        return self.features(pooled) @ w.T + b

    def probs(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.logits(pooled) / self.temperature, 1)

    def folded(self) -> "Head":
        """The same classifier with the temperature folded into the weights (logits / T is
        linear), for a model folder that knows no temperature."""
        t = self.temperature
        return Head(self.weight / t, self.bias / t, self.cosine, self.scale)


def update_head(head: Head, pooled: torch.Tensor, cand: torch.Tensor, fixed: torch.Tensor,
                fixed_targets: torch.Tensor, config: UpdateConfig = UpdateConfig(),
                components: Components = Components()) -> tuple[Head, list[float]]:
    """``head`` retrained on ``pooled`` (N, hidden) embeddings: each round takes the
    current prediction, partitions the samples (Eq. 2-4) and trains on the refined targets
    (Eq. 5); rows with a human label (``fixed``) keep their one-hot. Rows with neither a
    candidate set nor a human label are not trained on. Returns the new head and the
    loss of every step."""
    torch.manual_seed(config.seed)
    x = head.features(pooled)
    weight = torch.nn.Parameter(torch.from_numpy(head.weight).float().clone())
    bias = torch.nn.Parameter(torch.from_numpy(head.bias).float().clone())
    optimizer = torch.optim.AdamW([weight, bias], lr=config.lr,
                                  weight_decay=config.weight_decay)
    train = cand.any(1) | fixed
    every = cand | ~cand.any(1, keepdim=True)   # no set: every label is a candidate
    losses: list[float] = []
    for _ in range(config.rounds):
        with torch.no_grad():
            probs = F.softmax(x @ weight.T + bias, 1)
        part = partition(probs, every, delta=config.delta, tau=config.tau,
                         components=components, fixed=fixed)
        targets, weights = refined_targets(probs, every, part, gamma=config.gamma,
                                           components=components,
                                           fixed_targets=fixed_targets, fixed=fixed)
        weights = weights * train.float()
        if config.balance_humans and fixed.any() and (~fixed & train).any():
            # The human rows as one half of the loss, the teacher's rows as the other.
            weights = torch.where(fixed, weights / weights[fixed].sum(),
                                  weights / weights[~fixed].sum().clamp(min=1e-9))
        for _ in range(config.steps):
            ce = soft_cross_entropy(x @ weight.T + bias, targets, logits=True)
            loss = (weights * ce).sum() / weights.sum().clamp(min=1e-9)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    return Head(weight.detach().numpy().copy(), bias.detach().numpy().copy(), head.cosine,
                head.scale), losses    # temperature 1: see calibrate


# ----------------------------------------------------------------- calibration
# The temperatures searched (log-spaced): softening up to 20x, sharpening down to 1/4.
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(20.0), 400))


def temperature_matching(logits: torch.Tensor, confidence: float) -> float:
    """The temperature at which the mean top probability of ``logits`` equals
    ``confidence`` (the mean top probability falls as the temperature rises)."""
    means = [float(F.softmax(logits / t, 1).max(1).values.mean()) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(np.abs(np.array(means) - confidence)))])


def temperature_fitting(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature of least negative log-likelihood of ``labels`` (temperature scaling,
    Guo et al. 2017); ``logits`` must come from a model that did not see those labels."""
    nll = [float(F.cross_entropy(logits / t, labels)) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(nll))])


@dataclass(frozen=True)
class Calibration:
    """How an update's temperature was chosen (kept in the run's epoch record)."""

    temperature: float
    matching: float                # keeps the full student's mean confidence
    fitted: float | None           # from the human labels, cross-fitted (None: too few)
    humans: int


def calibrate(head: Head, start: Head, full: Head, pooled: torch.Tensor, cand: torch.Tensor,
              fixed: torch.Tensor, fixed_targets: torch.Tensor, config: UpdateConfig,
              components: Components = Components(), *, min_humans: int = 20,
              folds: int = 3, fold_rows: int = 5000) -> tuple[Head, Calibration]:
    """``head`` (a fresh update of ``start``) with a temperature, so that the percentages
    the app shows do not claim more than is known.

    Measured (bench/RESULTS.md, Session 10): the update's rounds of self-training lift the
    mean confidence with no gain in accuracy (TREC, no new decision: 62.6 -> 84.6 % at
    55 % accuracy), because candidate targets reward agreeing with the sets, not being
    right. Two estimates:

    - matching: the temperature at which the update is exactly as confident, on the texts
      people did not label, as the full distillation it started from (``full``);
    - fitted, with at least ``min_humans`` human labels: temperature scaling on
      out-of-fold logits, each fold's labels left out of its own update (``folds`` extra
      updates, a fraction of a second each at 2,000 texts, on at most ``fold_rows``
      unlabelled texts).

    The fitted one is kept when there is one. Measured against the rule "the fitted one,
    but never softer than matching" (an update never shown less sure than the full student):
    within 1.5 points of calibration error on TREC and Banking77, and up to 17 points worse
    on Medical Abstracts, whose full student is itself over-confident (80 % shown, 56 %
    right). Queue-chosen labels are the hard texts; a reviewer's labels that disagree with
    the student (a walk's test clicks) make it softer still, as they should.
    """
    def sample(rows: torch.Tensor) -> torch.Tensor:
        """At most ``fold_rows`` of ``rows`` (seeded): at 100,000 texts the temperature
        search and the fold updates over every text would cost many seconds."""
        if len(rows) <= fold_rows:
            return rows
        pick = torch.randperm(len(rows), generator=torch.Generator().manual_seed(
            config.seed))[:fold_rows]
        return rows[pick.sort().values]

    rest = ~fixed & cand.any(1)
    rest = sample(torch.nonzero(rest if rest.any() else torch.ones_like(fixed)).squeeze(1))
    reference = float(full.probs(pooled[rest]).max(1).values.mean())
    matching = temperature_matching(head.logits(pooled[rest]), reference)
    humans = torch.nonzero(fixed).squeeze(1)
    fitted = None
    if len(humans) >= min_humans:
        # The fold updates learn from every human row and a sample of the others.
        others = sample(torch.nonzero(~fixed).squeeze(1))
        rows = torch.cat([humans, others]).sort().values
        place = torch.searchsorted(rows, humans)          # the human rows within ``rows``
        fold_of = torch.arange(len(humans)) % folds
        held_logits = torch.zeros((len(humans), head.weight.shape[0]))
        for k in range(folds):
            keep = fixed[rows].clone()
            keep[place[fold_of == k]] = False
            fold_head, _ = update_head(start, pooled[rows], cand[rows], keep,
                                       fixed_targets[rows], config, components)
            held_logits[fold_of == k] = fold_head.logits(pooled[humans[fold_of == k]])
        fitted = temperature_fitting(held_logits, fixed_targets[humans].argmax(1))
    temperature = fitted if fitted is not None else matching
    return (Head(head.weight, head.bias, head.cosine, head.scale, temperature),
            Calibration(round(temperature, 3), round(matching, 3),
                        None if fitted is None else round(fitted, 3), len(humans)))


def out_of_sample_probs(pooled: torch.Tensor, targets: torch.Tensor, *, folds: int = 5,
                        seed: int = 0, max_iter: int = 50) -> np.ndarray:
    """(N, C) probabilities where each row comes from a logistic head that never saw it:
    K folds, each head fit (L-BFGS, soft cross entropy, L2 as scikit-learn's default
    C = 1) on the other folds' rows that have a target. Rows with no target (an all-zero
    ``targets`` row) are never trained on and are scored by the head of their fold."""
    n, c = targets.shape
    x = F.normalize(pooled.float(), dim=-1)
    has_target = targets.sum(1) > 0
    fold_of = torch.from_numpy(np.random.default_rng(seed).permutation(n) % max(2, folds))
    out = torch.full((n, c), 1.0 / c)
    for k in range(max(2, folds)):
        train = (fold_of != k) & has_target
        held = fold_of == k
        if not train.any() or not held.any():
            continue
        weight = torch.zeros((c, x.shape[1]), requires_grad=True)
        bias = torch.zeros(c, requires_grad=True)
        xt, tt = x[train], targets[train]
        penalty = 1.0 / (2.0 * len(xt))
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter,
                                      line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = soft_cross_entropy(xt @ weight.T + bias, tt, logits=True).mean() \
                + penalty * (weight ** 2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            out[held] = F.softmax(x[held] @ weight.T + bias, 1)
    return out.numpy()


def label_quality(labels: np.ndarray, oos_probs: np.ndarray) -> np.ndarray:
    """cleanlab's label-quality score of each given label (lower: more likely wrong) with
    the normalized margin, which cleanlab recommends for class-conditional errors (another
    label of the set fits better): a teacher's mislabel. NaN where ``labels`` is -1."""
    from cleanlab.rank import get_label_quality_scores
    out = np.full(len(labels), np.nan)
    known = labels >= 0
    if known.any():
        out[known] = get_label_quality_scores(labels[known].astype(int), oos_probs[known],
                                              method="normalized_margin")
    return out
