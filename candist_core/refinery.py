"""Distribution Refinery (method page §4): pure tensor functions, no model, no I/O.

Shapes: ``probs`` and ``targets`` are (N, C) rows summing to 1; ``cand`` is a (N, C) bool
mask of each sample's candidate set (never empty). Equation numbers follow the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_EPS = 1e-12


@dataclass(frozen=True)
class Components:
    """Switches for the paper's ablation (Table 6), each added in turn."""

    renormalize: bool = True       # Eq. 1 (else uniform targets over the set)
    filter_out: bool = True        # Eq. 2: out-of-candidate samples get no target term
    sharpen: bool = True           # Eq. 3 sharpening of the small-loss samples
    classwise: bool = True         # Eq. 3 small-loss selection per predicted class
    high_confidence: bool = True   # Eq. 4 one-hot targets for confident out-of-set samples


PLAIN = Components(False, False, False, False, False)


def uniform_targets(cand: torch.Tensor) -> torch.Tensor:
    """Uniform distribution over each candidate set (the ``uniform`` baseline, Eq. 1 at t=0)."""
    cand = cand.float()
    return cand / cand.sum(1, keepdim=True).clamp(min=1.0)


def renormalized_targets(probs: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Eq. 1: the prediction restricted to the candidate set and re-normalised."""
    masked = probs * cand.float()
    total = masked.sum(1, keepdim=True)
    fallback = uniform_targets(cand)
    return torch.where(total > _EPS, masked / total.clamp(min=_EPS), fallback)


def out_of_candidate(probs: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Eq. 2: samples whose predicted class lies outside their candidate set (bool, (N,))."""
    pred = probs.argmax(1)
    return ~cand.gather(1, pred.unsqueeze(1)).squeeze(1)


def soft_cross_entropy(probs_or_logits: torch.Tensor, targets: torch.Tensor, *,
                       logits: bool = False) -> torch.Tensor:
    """Per-sample cross entropy ``-sum_c q_c log p_c``, shape (N,)."""
    logp = (F.log_softmax(probs_or_logits, 1) if logits
            else torch.log(probs_or_logits.clamp(min=_EPS)))
    return -(targets * logp).sum(1)


def small_loss(probs: torch.Tensor, targets: torch.Tensor, eligible: torch.Tensor, *,
               delta: float, classwise: bool = True) -> torch.Tensor:
    """Eq. 3 selection: among ``eligible`` samples, the ``delta`` fraction with the smallest
    ``l_ce(p, q)``, taken within each predicted class (or globally)."""
    losses = soft_cross_entropy(probs, targets)
    selected = torch.zeros_like(eligible)
    groups = probs.argmax(1) if classwise else torch.zeros(len(probs), dtype=torch.long,
                                                              device=probs.device)
    for g in groups[eligible].unique():
        idx = torch.nonzero(eligible & (groups == g)).squeeze(1)
        k = int(round(delta * len(idx)))
        if k > 0:
            chosen = idx[torch.argsort(losses[idx])[:k]]
            selected[chosen] = True
    return selected


def sharpen(targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """Eq. 3 sharpening: ``q^(1/gamma)`` re-normalised (gamma < 1 sharpens)."""
    powered = targets.clamp(min=0) ** (1.0 / gamma)
    return powered / powered.sum(1, keepdim=True).clamp(min=_EPS)


def high_confidence(probs: torch.Tensor, out_mask: torch.Tensor, *, tau: float) -> torch.Tensor:
    """Eq. 4: out-of-candidate samples whose top probability exceeds ``tau``."""
    return out_mask & (probs.max(1).values > tau)


@dataclass
class Partition:
    """Per-sample membership of the epoch's sets (bool tensors of shape (N,))."""

    out: torch.Tensor
    small_loss: torch.Tensor
    high_conf: torch.Tensor


def partition(probs: torch.Tensor, cand: torch.Tensor, *, delta: float, tau: float,
              components: Components = Components(),
              fixed: torch.Tensor | None = None) -> Partition:
    """Eq. 2-4 from the epoch's predictions. ``fixed`` marks human-labeled samples: they are
    never out-of-candidate, never selected, never re-targeted."""
    fixed = fixed if fixed is not None else torch.zeros(len(probs), dtype=torch.bool,
                                                          device=probs.device)
    out = out_of_candidate(probs, cand) & ~fixed if components.filter_out else \
        torch.zeros_like(fixed)
    base = renormalized_targets(probs, cand) if components.renormalize else uniform_targets(cand)
    if components.sharpen:
        selected = small_loss(probs, base, ~out & ~fixed, delta=delta,
                              classwise=components.classwise)
    else:
        selected = torch.zeros_like(fixed)
    high = high_confidence(probs, out, tau=tau) if components.high_confidence else \
        torch.zeros_like(fixed)
    return Partition(out, selected, high)


def refined_targets(probs: torch.Tensor, cand: torch.Tensor, part: Partition, *,
                    gamma: float, components: Components = Components(),
                    fixed_targets: torch.Tensor | None = None,
                    fixed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 targets and weights for a batch.

    ``probs``: the epoch's (detached) prediction: Eq. 1 re-normalises it and its argmax is
    the one-hot target of high-confidence samples. Human-labeled rows (``fixed``) get
    ``fixed_targets`` as they are. Weight 0 marks out-of-candidate samples that are not
    high-confidence.
    """
    targets = renormalized_targets(probs, cand) if components.renormalize else \
        uniform_targets(cand)
    targets = torch.where(part.small_loss.unsqueeze(1), sharpen(targets, gamma), targets)
    onehot = F.one_hot(probs.argmax(1), probs.shape[1]).to(targets.dtype)
    targets = torch.where(part.high_conf.unsqueeze(1), onehot, targets)
    weights = (~part.out | part.high_conf).to(targets.dtype)
    if fixed is not None and fixed.any():
        targets = torch.where(fixed.unsqueeze(1), fixed_targets.to(targets.dtype), targets)
        weights = torch.where(fixed, torch.ones_like(weights), weights)
    return targets, weights
