"""The offline teacher's sentence embeddings, kept beside the database so that teaching
the teacher with human labels (:mod:`human_teacher`) does not run the encoder again.

The human-taught teacher re-ranks every text with votes from the human-labelled ones. The
votes are cheap; the encoder pass over every text is not (10-130 s for 800-1,500 texts on
two CPU cores, bench/RESULTS.md), and the continuous update wants it after every 50
decisions. The embeddings of a text never change for a given encoder, so the offline
teacher's annotation writes them here once and every later taught run reads them.

``<database folder>/models/<project>/embeddings-<encoder>.npz``: ``keys`` (N x 16 bytes:
the start of each text's SHA-256) and ``vectors`` (float16, unit rows: 77 MB at 100,000 texts
of MiniLM's 384 dimensions). Keyed by text, not sample id, so label descriptions and texts
imported later share the cache, and an edited label description is simply a new key.
Written to a temporary file and renamed: a crash never leaves a half file. Plain arrays
(``allow_pickle=False``). A missing or unreadable file is an empty cache, never an error:
it only costs the encoder pass it saves.

Vectors come back float16-rounded whether they were cached or just computed, so a run's
labels do not depend on what the cache held.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

# The name teacher runs record for the default encoder (encoder.SentenceEncoder's name;
# here, free of torch, for the modules that only compare names).
DEFAULT_ENCODER_NAME = "all-MiniLM-L6-v2"

def cache_path(db_path, project_name: str, encoder_name: str) -> Path | None:
    """Where a project's embeddings of ``encoder_name`` live; None for an in-memory
    database (nothing to keep them beside)."""
    if str(db_path) == ":memory:":
        return None
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in encoder_name)
    return Path(db_path).parent / "models" / project_name / f"embeddings-{safe}.npz"


KEY_BYTES = 16


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:KEY_BYTES]


class EmbeddingCache:
    """Embeddings by text, loaded from ``path`` (None: kept in memory only). Texts added
    since the load wait in a dict until :meth:`save` joins them to the array once, so
    adding 100,000 texts in batches copies nothing per batch."""

    def __init__(self, path: Path | None):
        self.path = path
        self._rows: dict[bytes, int] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float16)
        self._pending: dict[bytes, np.ndarray] = {}
        if path is not None and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as f:
                    keys, vectors = f["keys"], f["vectors"]
            except (OSError, KeyError, ValueError):
                return                      # unreadable: an empty cache, rebuilt on save
            if keys.dtype == np.uint8 and keys.shape[1:] == (KEY_BYTES,) \
                    and vectors.ndim == 2 and len(keys) == len(vectors):
                raw = keys.tobytes()
                self._vectors = vectors.astype(np.float16, copy=False)
                self._rows = {raw[i * KEY_BYTES:(i + 1) * KEY_BYTES]: i
                              for i in range(len(keys))}

    def __len__(self) -> int:
        return len(self._rows) + len(self._pending)

    def missing(self, texts: list[str]) -> list[int]:
        """Indices of the texts not in the cache."""
        return [i for i, t in enumerate(texts)
                if (k := text_key(t)) not in self._rows and k not in self._pending]

    def get(self, texts: list[str]) -> np.ndarray:
        """Float32 vectors of ``texts``, every one of them cached (see :meth:`missing`)."""
        width = (self._vectors.shape[1] if self._rows else
                 len(next(iter(self._pending.values()))) if self._pending else 0)
        out = np.empty((len(texts), width), dtype=np.float32)
        for i, text in enumerate(texts):
            key = text_key(text)
            row = self._rows.get(key)
            out[i] = self._vectors[row] if row is not None else self._pending[key]
        return out

    def add(self, texts: list[str], vectors: np.ndarray) -> None:
        for text, vec in zip(texts, np.asarray(vectors, dtype=np.float16)):
            key = text_key(text)
            if key not in self._rows:
                self._pending[key] = vec

    def save(self) -> None:
        """Write the cache when it gained texts (atomically; a failure to write loses
        only the saving, never the caller's work)."""
        if self.path is None or not self._pending:
            return
        base = len(self._rows)
        self._vectors = np.concatenate([self._vectors.reshape(base, -1),
                                        np.stack(list(self._pending.values()))]) \
            if base else np.stack(list(self._pending.values()))
        for i, key in enumerate(self._pending):
            self._rows[key] = base + i
        self._pending = {}
        # (N, 16) bytes, not numpy's "S16": that drops a key's trailing zero bytes.
        keys = np.frombuffer(b"".join(sorted(self._rows, key=self._rows.get)),
                             dtype=np.uint8).reshape(-1, KEY_BYTES)
        tmp = self.path.with_name(self.path.name + ".part.npz")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(tmp, keys=keys, vectors=self._vectors)
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)


class CachingEncoder:
    """A sentence encoder that answers from an :class:`EmbeddingCache` and runs the real
    encoder (loaded by ``load`` on the first miss, so a fully cached call loads no model)
    only for the texts it has not seen. ``name``: the encoder's, as teacher runs record it.
    Every vector comes back float16-rounded, cached or just computed.
    """

    def __init__(self, cache: EmbeddingCache, name: str, load: Callable[[], object]):
        self.cache = cache
        self.name = name
        self._load = load
        self._encoder = None
        self.encoded = 0             # texts the real encoder ran on (tests, benchmarks)

    @classmethod
    def around(cls, encoder, cache: EmbeddingCache) -> "CachingEncoder":
        return cls(cache, encoder.name, lambda: encoder)

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        missing = self.cache.missing(texts)
        if missing:
            if self._encoder is None:
                self._encoder = self._load()
            todo = [texts[i] for i in missing]
            self.cache.add(todo, self._encoder.encode(todo, batch_size=batch_size))
            self.encoded += len(todo)
        return self.cache.get(texts)

    def save(self) -> None:
        self.cache.save()
