"""Few-shot demonstrations retrieved by sentence-embedding similarity (method page, §2).

The pool is the project's human-reviewed samples when there are any, else examples the
LLM writes itself (the paper's approach: ~100 synthetic texts with labels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DemoPool:
    """Labeled example texts and their unit-norm embeddings."""

    texts: list[str]
    labels: list[str]
    embeddings: np.ndarray
    source: str  # "human" or "generated"

    def nearest(self, query_embeddings: np.ndarray, k: int) -> list[list[tuple[str, str]]]:
        """For each query row, the ``k`` most similar (text, label) pairs, most similar
        last (closest to the question in the prompt)."""
        if k <= 0 or not self.texts:
            return [[] for _ in range(len(query_embeddings))]
        k = min(k, len(self.texts))
        scores = query_embeddings @ self.embeddings.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        out = []
        for row, idx in zip(scores, top):
            idx = idx[np.argsort(row[idx])]  # ascending: most similar last
            out.append([(self.texts[i], self.labels[i]) for i in idx])
        return out


def human_pool(store, project_id: int, encoder) -> DemoPool | None:
    """Reviewed samples with a human label, or None when there are none."""
    decisions = {sid: d["label"] for sid, d in store.current_decisions(project_id).items()
                 if d["action"] == "label"}
    if not decisions:
        return None
    samples = store.samples(project_id, ids=list(decisions))
    texts = [s.text for s in samples]
    return DemoPool(texts, [decisions[s.id] for s in samples], encoder.encode(texts), "human")


def exclude_self(demos: list[tuple[str, str]], text: str) -> list[tuple[str, str]]:
    """A reviewed sample must not be its own demonstration."""
    return [d for d in demos if d[0] != text]
