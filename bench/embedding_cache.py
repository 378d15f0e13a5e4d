"""The embedding cache's own cost (candist_core/embedding_cache.py), without a model: the
encoder is replaced by random unit vectors, so only the cache's bookkeeping is timed.

    .venv/bin/python bench/embedding_cache.py [--texts 100000]

Printed, one JSON object: seconds to put every text through ``CachingEncoder.encode`` in
one call and in the offline teacher's batches of 256, to save the file, to load it, and to
read every text back from a loaded cache (what a re-taught teacher does).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from candist_core.embedding_cache import CachingEncoder, EmbeddingCache  # noqa: E402


class RandomEncoder:
    name = "random"

    def __init__(self, dim: int = 384):
        self.rng, self.dim = np.random.default_rng(0), dim

    def encode(self, texts, *, batch_size: int = 64) -> np.ndarray:
        v = self.rng.normal(size=(len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return round(time.perf_counter() - started, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=100_000)
    args = parser.parse_args()
    texts = [f"text number {i} of the benchmark" for i in range(args.texts)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "embeddings-random.npz"
        one = CachingEncoder.around(RandomEncoder(), EmbeddingCache(None))
        batched = CachingEncoder.around(RandomEncoder(), EmbeddingCache(path))
        record = {"bench": "embedding_cache", "texts": args.texts,
                  "one_call_s": timed(lambda: one.encode(texts)),
                  "batches_of_256_s": timed(lambda: [batched.encode(texts[s:s + 256])
                                                     for s in range(0, len(texts), 256)]),
                  "save_s": timed(batched.save)}
        loaded = []
        record["load_s"] = timed(lambda: loaded.append(EmbeddingCache(path)))
        reader = CachingEncoder(loaded[0], "random", lambda: None)
        record["read_all_s"] = timed(lambda: reader.encode(texts))
        record["file_mb"] = round(path.stat().st_size / 2**20, 1)
        assert reader.encoded == 0
    print(json.dumps(record))


if __name__ == "__main__":
    main()
