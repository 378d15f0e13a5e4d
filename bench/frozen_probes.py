"""What the frozen sentence embeddings allow, before any fine-tuning (seconds per dataset).

    .venv/bin/python bench/frozen_probes.py

Same pools as bench/distill_quality.py and the offline teacher's default CA_all sets. Per
dataset: teacher SA (on the pool and on the whole test split); label propagation of the
candidate sets over the k nearest neighbours; a nearest-centroid classifier at the
candidate-set prototypes refined by re-normalising its own predictions inside each set
(Eq. 1 on frozen features); and, as a reference that uses gold labels, a linear probe
trained on them (5-fold). Accuracy on the pool unless named, one JSON line each.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from candist_core.encoder import shared_encoder  # noqa: E402
from candist_core.schema import label_texts, load_schema  # noqa: E402
from candist_core.teacher import TeacherConfig, candidate_sets, rank_labels  # noqa: E402
from distill_quality import DATASETS, SIZES, read_split  # noqa: E402


def propagate(x: np.ndarray, cand: np.ndarray, k: int, iterations: int = 10) -> np.ndarray:
    """Each sample's set re-weighted by its neighbours' (similarity-weighted) targets."""
    sim = x @ x.T
    np.fill_diagonal(sim, -1)
    nn = np.argsort(-sim, 1)[:, :k]
    w = np.maximum(np.take_along_axis(sim, nn, 1), 0)
    q = cand / cand.sum(1, keepdims=True)
    for _ in range(iterations):
        q = (w[..., None] * q[nn]).sum(1) * cand + 1e-12 * cand
        q /= q.sum(1, keepdims=True)
    return q


def prototype_refinery(x: np.ndarray, cand: np.ndarray, iterations: int = 5,
                       scale: float = 20.0) -> np.ndarray:
    q = cand / cand.sum(1, keepdims=True)
    for _ in range(iterations):
        proto = q.T @ x / np.maximum(q.sum(0)[:, None], 1e-9)
        proto /= np.maximum(np.linalg.norm(proto, axis=1, keepdims=True), 1e-9)
        p = rank_labels(x @ proto.T, temperature=1 / scale)
        q = p * cand
        q /= q.sum(1, keepdims=True)
    return p


def gold_probe(x: np.ndarray, gold: np.ndarray, classes: int, folds: int = 5) -> float:
    torch.manual_seed(0)
    X, y = torch.tensor(x) * 20, torch.tensor(gold)
    correct = 0
    for part in torch.randperm(len(X)).chunk(folds):
        train = torch.ones(len(X), dtype=torch.bool)
        train[part] = False
        W = torch.zeros(X.shape[1], classes, requires_grad=True)
        b = torch.zeros(classes, requires_grad=True)
        opt = torch.optim.LBFGS([W, b], max_iter=200)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(X[train] @ W + b, y[train]) \
                + 1e-3 * (W ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        correct += int(((X[part] @ W + b).argmax(1) == y[part]).sum())
    return correct / len(X)


def main() -> None:
    encoder, teacher = shared_encoder(), TeacherConfig()
    for name, size in SIZES.items():
        schema = load_schema(DATASETS / name / "labels.json")
        pool = read_split(name, "train", size)
        x = encoder.encode(pool.text.tolist())
        gold = np.array([schema.names.index(g) for g in pool.label])
        probs = rank_labels(x @ encoder.encode(label_texts(schema)).T,
                            temperature=teacher.softmax_temperature)
        cand = np.zeros(probs.shape, dtype=bool)
        for i, s in enumerate(candidate_sets(probs, strategy="ca_all", r_add=teacher.r_add,
                                             r_all=teacher.r_all)):
            cand[i, s] = True
        acc = lambda p: round(float((p.argmax(1) == gold).mean()), 4)  # noqa: E731
        # The teacher on the test split too: item 6 of issue #13 on texts nobody trained on
        # (the students' test-split scores come from distill_quality.py).
        test = read_split(name, "test")
        test_gold = np.array([schema.names.index(g) for g in test.label])
        test_probs = rank_labels(encoder.encode(test.text.tolist())
                                 @ encoder.encode(label_texts(schema)).T,
                                 temperature=teacher.softmax_temperature)
        print(json.dumps({
            "dataset": name, "n": size, "teacher_sa": acc(probs),
            "teacher_sa_test": round(float((test_probs.argmax(1) == test_gold).mean()), 4),
            "test_n": len(test),
            "ca_all_coverage": round(float(cand[np.arange(size), gold].mean()), 4),
            **{f"propagation_k{k}": acc(propagate(x, cand, k)) for k in (10, 20, 50)},
            "prototype_refinery": acc(prototype_refinery(x, cand)),
            "gold_linear_probe_5fold": round(gold_probe(x, gold, len(schema.names)), 4)}),
            flush=True)


if __name__ == "__main__":
    main()
