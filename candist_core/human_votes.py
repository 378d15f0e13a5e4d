"""Human votes: what people labelled teaches the offline teacher (issue #13, item 2).

The offline teacher ranks labels by how similar a text is to each label's description.
Once people have labelled texts (review decisions, audit labels), those texts say more
about a label than its one-line description: a text near a human-labelled text tends to
share its label. Two kinds of votes, both over unit-norm sentence embeddings:

- ``prototypes``: cosine similarity to the mean embedding of each label's human-labelled
  texts, softmax with the teacher's temperature;
- ``knn``: the ``k`` most similar human-labelled texts, each voting for its label with
  weight ``exp(similarity / temperature)``.

Votes only move the teacher's probability among the labels people have used: a label no
one has labelled yet keeps the teacher's own probability (votes cannot speak for it and
must not silence it). The result is ``(1 - w) * teacher + w * votes``.

The weight ``w`` is not a constant: :func:`fit_human_votes` takes it from the
human-labelled texts themselves. Each of them is predicted from all the others (its own
vote left out) for every ``w`` of a grid, and the ``w`` that predicts their labels best
wins (accuracy, ties broken by mean log-likelihood). No gold label is needed, and the
weight follows the data: a handful of labels that disagree with their neighbours keeps
``w`` low, many consistent ones raise it. A text's own human label never votes for
itself, in the fit or afterwards, so the teacher's label of an audited text stays an
honest (leave-one-out) prediction and the audit's teacher estimate stays meaningful.

Default kind ``prototypes``, by measurement (``bench/human_teacher.py``; ``bench/RESULTS.md``,
Session 7): on the three shared datasets, with 50 to 400 simulated human labels, it gave
the better single label on the texts without a human label in 10 of 12 cases and lost the
other two by 0.1 point (TREC +9 to +22 points over no votes, knn +6 to +14; medical
abstracts -1 to +2 against knn's -2.5 to 0), and smaller CA_all sets at similar coverage
(TREC with 100+ labels: 1.7-1.9 labels against knn's 2.3-2.5). knn kept up to 5.5 points
more CA_all coverage on medical abstracts, with larger sets. A label's mean embedding is a
steadier vote than its few nearest texts when labels are few.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

VOTE_KINDS = ("prototypes", "knn")
WEIGHTS = tuple(i / 10 for i in range(11))   # candidate mix weights, 0 (teacher) .. 1 (votes)


@dataclass(frozen=True)
class HumanVoteConfig:
    """How the offline teacher takes votes from human-labelled texts.

    ``kind``: ``prototypes`` or ``knn``; ``k``: neighbours that vote (knn); ``weights``:
    the grid the mix weight is chosen from by leave-one-out on the human-labelled texts.
    """

    kind: str = "prototypes"
    k: int = 10
    weights: tuple[float, ...] = WEIGHTS

    def __post_init__(self):
        if self.kind not in VOTE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(VOTE_KINDS)}, got {self.kind!r}")
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if not self.weights or any(not 0 <= w <= 1 for w in self.weights):
            raise ValueError("weights must be a non-empty grid of values in [0, 1]")

    def identity(self) -> dict:
        """The settings that change the votes (part of a teacher run's params)."""
        return {"human_votes": self.kind, **({"vote_k": self.k} if self.kind == "knn" else {})}


@dataclass(frozen=True)
class HumanVotes:
    """A fitted mix: the human-labelled texts, the vote kind and the chosen weight.

    ``loo``: what the fit measured on the human-labelled texts, each predicted from the
    others: ``n``, ``teacher_accuracy`` (w = 0) and ``accuracy`` (at ``weight``).
    """

    kind: str
    k: int
    temperature: float
    weight: float
    embeddings: np.ndarray = field(repr=False)   # (M, d), unit rows
    labels: np.ndarray = field(repr=False)       # (M,), label indices
    num_classes: int
    loo: dict

    def combine(self, probs: np.ndarray, embeddings: np.ndarray, *,
                own: np.ndarray | None = None) -> np.ndarray:
        """The teacher's probabilities ``probs`` (N, C) mixed with the votes for texts with
        unit embeddings (N, d). ``own`` (N,): for a text that is itself one of the
        human-labelled texts, its index among them (its vote is left out), else -1."""
        probs, embeddings, own = _check_rows(probs, embeddings, own, self.num_classes,
                                             self.embeddings.shape[1], len(self.labels))
        votes, voted = vote_probs(embeddings, self.embeddings, self.labels,
                                  num_classes=self.num_classes, kind=self.kind, k=self.k,
                                  temperature=self.temperature, own=own)
        return mix(probs, votes, voted, self.weight)


def fit_human_votes(human_probs: np.ndarray, human_embeddings: np.ndarray,
                    human_labels: np.ndarray, *, kind: str = "prototypes", k: int = 10,
                    temperature: float = 0.05, weights: tuple[float, ...] = WEIGHTS
                    ) -> HumanVotes:
    """Choose the mix weight by leave-one-out on the human-labelled texts.

    Parameters
    ----------
    human_probs : (M, C) the teacher's label probabilities of the human-labelled texts.
    human_embeddings : (M, d) their unit-norm embeddings.
    human_labels : (M,) their human labels as indices into the C labels.
    kind : ``prototypes`` or ``knn``; ``k``: voting neighbours (knn);
    temperature : softmax temperature over cosine similarities (the teacher's own);
    weights : the grid of mix weights in [0, 1].
    """
    config = HumanVoteConfig(kind=kind, k=k, weights=tuple(weights))
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    human_probs = np.asarray(human_probs, dtype=float)
    if human_probs.ndim != 2 or human_probs.shape[1] < 2:
        raise ValueError("human_probs must have shape (M, C) with C >= 2")
    m, c = human_probs.shape
    human_embeddings = np.asarray(human_embeddings, dtype=np.float32)
    human_labels = np.asarray(human_labels, dtype=int)
    if m == 0:
        raise ValueError("there are no human-labelled texts to fit the votes on")
    if human_embeddings.ndim != 2 or len(human_embeddings) != m:
        raise ValueError(f"human_embeddings must have shape (M, d) with M = {m}")
    if human_labels.shape != (m,) or human_labels.min() < 0 or human_labels.max() >= c:
        raise ValueError(f"human_labels must be M = {m} label indices in [0, {c})")
    return _fit(human_probs, human_embeddings, human_labels, config, temperature)


def _fit(probs, embeddings, labels, config: HumanVoteConfig, temperature: float
         ) -> HumanVotes:
    m, c = probs.shape
    votes, voted = vote_probs(embeddings, embeddings, labels, num_classes=c, kind=config.kind,
                              k=config.k, temperature=temperature, own=np.arange(m))
    rows = np.arange(m)
    scored = []
    for w in config.weights:
        mixed = mix(probs, votes, voted, w)
        accuracy = float(np.mean(mixed.argmax(axis=1) == labels))
        loglik = float(np.mean(np.log(mixed[rows, labels] + 1e-12)))
        scored.append((accuracy, loglik, -w, w))
    best = max(scored)   # accuracy first, then log-likelihood, then the smaller weight
    teacher_accuracy = float(np.mean(probs.argmax(axis=1) == labels))
    # The votes must beat the teacher alone by more than one standard error of the
    # leave-one-out accuracy on these m texts: with a handful of labels (10 texts: up to
    # 16 points of noise) a noisy win is no evidence, and the reviewed texts are the ones
    # the teacher found hard, which flatters any change. Below that the teacher is kept.
    noise = float(np.sqrt(teacher_accuracy * (1 - teacher_accuracy) / m))
    weight, accuracy = best[3], best[0]
    if accuracy - teacher_accuracy <= noise:
        weight, accuracy = 0.0, teacher_accuracy
    return HumanVotes(config.kind, config.k, temperature, weight, embeddings, labels, c,
                      {"n": m, "teacher_accuracy": round(teacher_accuracy, 4),
                       "accuracy": round(accuracy, 4),
                       "best_weight": best[3], "best_accuracy": round(best[0], 4)})


def vote_probs(embeddings: np.ndarray, human_embeddings: np.ndarray, human_labels: np.ndarray,
               *, num_classes: int, kind: str, k: int, temperature: float,
               own: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The votes of the human-labelled texts for each text: ``(votes, voted)``, both (N, C).

    ``votes`` rows sum to 1 over ``voted``, the labels that some human-labelled text other
    than the row's own (``own``, as in :meth:`HumanVotes.combine`) carries; 0 elsewhere.
    """
    n = len(embeddings)
    own = np.full(n, -1) if own is None else np.asarray(own, dtype=int)
    onehot = np.zeros((len(human_labels), num_classes), dtype=np.float64)
    onehot[np.arange(len(human_labels)), human_labels] = 1.0
    counts = np.broadcast_to(onehot.sum(axis=0), (n, num_classes)).copy()
    mine = own >= 0
    counts[np.flatnonzero(mine), human_labels[own[mine]]] -= 1
    voted = counts > 0
    if kind == "prototypes":
        scores = _prototype_similarities(embeddings, human_embeddings, human_labels, onehot,
                                         own, num_classes)
        z = np.where(voted, scores / temperature, -np.inf)
    elif kind == "knn":
        sims = embeddings.astype(np.float64) @ human_embeddings.astype(np.float64).T
        sims[np.flatnonzero(mine), own[mine]] = -np.inf   # a text never votes for itself
        kk = min(k, sims.shape[1])
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        top_sims = np.take_along_axis(sims, top, axis=1)
        best = top_sims.max(axis=1, keepdims=True)
        weight = np.exp((top_sims - np.where(np.isfinite(best), best, 0.0)) / temperature)
        z = np.zeros((n, num_classes))
        np.add.at(z, (np.repeat(np.arange(n), kk), human_labels[top].ravel()), weight.ravel())
        z = np.where(z > 0, np.log(np.where(z > 0, z, 1.0)), -np.inf)
    else:
        raise ValueError(f"kind must be one of {', '.join(VOTE_KINDS)}, got {kind!r}")
    any_vote = np.isfinite(z).any(axis=1)
    z[~any_vote] = 0.0
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    votes = e / e.sum(axis=1, keepdims=True)
    votes[~any_vote] = 0.0
    voted &= any_vote[:, None]
    return votes, voted


def _prototype_similarities(embeddings, human_embeddings, human_labels, onehot, own,
                            num_classes) -> np.ndarray:
    """Cosine of each text to each label's mean human embedding, its own vote left out."""
    sums = onehot.T @ human_embeddings.astype(np.float64)                  # (C, d)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    protos = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
    scores = embeddings.astype(np.float64) @ protos.T                      # (N, C)
    for i in np.flatnonzero(own >= 0):
        j = own[i]
        label = human_labels[j]
        rest = sums[label] - human_embeddings[j]
        size = np.linalg.norm(rest)
        scores[i, label] = embeddings[i] @ rest / size if size > 1e-9 else 0.0
    return scores


def mix(probs: np.ndarray, votes: np.ndarray, voted: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * probs + weight * votes'``, where ``votes'`` keeps the teacher's
    probability on labels nobody voted for and spreads the teacher's mass on the voted
    labels as the votes say. Rows still sum to 1."""
    mass = np.where(voted, probs, 0.0).sum(axis=1, keepdims=True)
    spread = np.where(voted, votes * mass, probs)
    return (1.0 - weight) * probs + weight * spread


def _check_rows(probs, embeddings, own, num_classes, dim, m):
    probs = np.asarray(probs, dtype=float)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != num_classes:
        raise ValueError(f"probs must have shape (N, {num_classes})")
    if embeddings.shape != (len(probs), dim):
        raise ValueError(f"embeddings must have shape ({len(probs)}, {dim})")
    own = np.full(len(probs), -1) if own is None else np.asarray(own, dtype=int)
    if own.shape != (len(probs),) or own.max(initial=-1) >= m or own.min(initial=-1) < -1:
        raise ValueError(f"own must be N = {len(probs)} indices in [-1, {m})")
    return probs, embeddings, own
