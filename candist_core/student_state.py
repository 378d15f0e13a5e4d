"""What a student run leaves for the learning loop, next to its model folder: its head
(every run) and, for a full distillation, the embeddings its encoder gives every text, so
that an update retrains the head in seconds without running the encoder.

``<database folder>/models/<project>/run-N.state/``: ``head.npz`` (weight, bias, cosine,
scale, labels) and, for full runs, ``embeddings.npy`` (float16: 77 MB at 100,000 texts of
MiniLM's 384 dimensions) with ``sample_ids.npy``. Written under a temporary name and
renamed into place, like the model folder: a crash never leaves a state that looks whole.
Plain arrays (``allow_pickle=False``), so a shared database folder cannot run code.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .folders import write_folder
from .learning import Head
from .records import StudentError


def state_path(checkpoint_dir: Path) -> Path:
    """The state folder of the run whose model folder is (or would be) ``checkpoint_dir``."""
    return checkpoint_dir.with_name(checkpoint_dir.name + ".state")


def save_state(path: Path, *, head: Head, labels: list[str],
               sample_ids: np.ndarray | None = None,
               embeddings: np.ndarray | None = None) -> Path:
    def fill(tmp: Path) -> None:
        np.savez(tmp / "head.npz", weight=head.weight.astype(np.float32),
                 bias=head.bias.astype(np.float32), cosine=np.array(head.cosine),
                 scale=np.array(head.scale, dtype=np.float32), labels=np.array(labels),
                 temperature=np.array(head.temperature, dtype=np.float32))
        if embeddings is not None:
            np.save(tmp / "embeddings.npy", np.asarray(embeddings, dtype=np.float16))
            np.save(tmp / "sample_ids.npy", np.asarray(sample_ids, dtype=np.int64))

    return write_folder(path, fill)


def load_head(path: Path) -> tuple[Head, list[str]]:
    try:
        with np.load(Path(path) / "head.npz", allow_pickle=False) as f:
            temperature = float(f["temperature"]) if "temperature" in f.files else 1.0
            return (Head(f["weight"], f["bias"], bool(f["cosine"]), float(f["scale"]),
                         temperature), [str(x) for x in f["labels"]])
    except (OSError, KeyError, ValueError) as exc:
        raise StudentError(f"The student's saved head at {path} cannot be read ({exc}): "
                           "run a full distillation.") from exc


def load_embeddings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, float32 embeddings) of a full run's texts."""
    try:
        ids = np.load(Path(path) / "sample_ids.npy", allow_pickle=False)
        emb = np.load(Path(path) / "embeddings.npy", allow_pickle=False).astype(np.float32)
    except (OSError, ValueError) as exc:
        raise StudentError(f"The student's saved embeddings at {path} cannot be read "
                           f"({exc}): run a full distillation.") from exc
    return ids, emb
