"""Few-shot demonstrations retrieved by sentence-embedding similarity (method page, §2).

The pool is the project's human-reviewed samples when there are any (read from the store by
``teacher.annotate_project``), else examples the LLM writes itself (the paper's approach:
~100 synthetic texts with labels).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class DemoPool:
    """Labeled example texts to draw demonstrations from."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    source: str  # "human" or "generated"

    def retrieve(self, queries: Sequence[str], encoder, *, k: int
                 ) -> list[list[tuple[str, str]]]:
        """For each query text, the ``k`` most similar (text, label) pairs, most similar last
        (closest to the question in the prompt). A text is never its own demonstration (a
        reviewed sample is in the pool and may be annotated again)."""
        if k <= 0 or not self.texts:
            return [[] for _ in queries]
        order = nearest(encoder.encode(list(queries)), encoder.encode(list(self.texts)), k + 1)
        return [[(self.texts[i], self.labels[i]) for i in idx if self.texts[i] != text][-k:]
                for text, idx in zip(queries, order)]


def nearest(queries: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` pool rows most similar to each query row, most similar last.

    ``queries`` (n, d) and ``pool`` (m, d) are unit-norm embeddings; returns (n, min(k, m)).
    """
    k = min(k, len(pool))
    scores = queries @ pool.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    ranks = np.take_along_axis(scores, top, axis=1).argsort(axis=1)  # ascending
    return np.take_along_axis(top, ranks, axis=1)
