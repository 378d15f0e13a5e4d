"""The student: a transformers encoder fine-tuned on the teacher's candidate sets with
Distribution Refinery (method page §4), plus the ``sa`` and ``uniform`` baselines in the
same loop so they are compared with the same budget and model-selection rule.

:class:`Distiller` is the trainer: data, model and config come in, side effects leave
through callbacks. Model selection needs no gold labels: held-out human decisions when
there are enough, else agreement with the candidate sets on a held-back slice of
teacher-annotated samples the student never trains on.
"""
from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .encoder import mean_pool, pick_device, resolve_model
from .records import StudentError
from .refinery import (PLAIN, Components, Partition, partition, refined_targets,
                       soft_cross_entropy, uniform_targets)

METHODS = ("candist", "sa", "uniform")


@dataclass(frozen=True)
class StudentConfig:
    """Training settings; the defaults are the recommended ones (bench/RESULTS.md)."""

    method: str = "candist"
    model: str | None = None        # local transformers directory; default MiniLM-L6
    epochs: int = 4
    warmup_epochs: int = 1          # epochs on re-normalised targets before refinery sets
    min_warmup_steps: int = 50      # ... and at least this many steps (small data sets)
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06      # linear LR warm-up share of all steps, then linear decay
    batch_size: int = 32
    max_length: int | None = None   # None: 95th percentile of token lengths, capped at 128
    delta: float = 0.5
    gamma: float = 0.85
    tau: float = 0.95
    components: Components = field(default_factory=Components)
    consistency: float = 0.25       # share of each batch given an augmented view (0: off)
    augment_p: float = 0.15         # token masking rate of the augmented view
    mixup: bool = True              # mixup of pooled embeddings and targets, Beta(4, 4)
    mixup_alpha: float = 4.0
    eta_max: float = 1.0            # weight of the regularisers, ramped 0 -> eta_max
    head_init: str = "auto"         # auto | random | labels | prototypes (see resolve_head)
    prototypes_below: float = 50.0  # auto: prototypes under this many samples per class
    head_lr_mult: float = 1.0       # learning-rate factor of the new head
    start_from_head: bool = True    # informed head: first Eq. 1 targets from its predictions
    holdout: float = 0.1            # held-back share for label-free model selection
    max_holdout: int = 500
    min_human_validation: int = 20  # human labels needed to select on them instead
    device: str = "auto"
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise StudentError(f"Unknown method {self.method!r}: use candist, sa or uniform.")
        if self.epochs < 1 or self.batch_size < 1:
            raise StudentError("Epochs and batch size must be at least 1.")
        if self.max_length is not None and not 8 <= self.max_length <= 512:
            raise StudentError("--max-length must be between 8 and 512.")
        if not 0 < self.lr < 1:
            raise StudentError("--lr must be between 0 and 1.")
        if self.head_init not in HEAD_INITS:
            raise StudentError(f"Unknown head start {self.head_init!r}: use "
                               f"{', '.join(HEAD_INITS)}.")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainingData:
    """Everything the trainer needs, as arrays aligned with ``sample_ids``.

    ``cand``: (N, C) candidate masks (all False for samples with no annotation);
    ``fixed``: rows with a human label, whose one-hot target is ``human``; ``gold``: the
    gold class index or -1 (only ever used for reporting).
    """

    sample_ids: list[int]
    texts: list[str]
    labels: list[str]
    cand: torch.Tensor
    human: torch.Tensor
    gold: torch.Tensor
    label_texts: list[str] | None = None   # "name: description", to initialise the head

    @property
    def fixed(self) -> torch.Tensor:
        return self.human >= 0

    @property
    def trainable(self) -> torch.Tensor:
        return self.fixed | self.cand.any(1)


@dataclass
class FitResult:
    probs: np.ndarray                  # (N, C) final probabilities of every sample
    history: list[dict]
    best_epoch: int
    flags: dict[str, np.ndarray]       # out_of_candidate, high_confidence, small_loss
    state: dict | None = None          # best weights (for the checkpoint)
    max_length: int = 0
    cancelled: bool = False


HEAD_INITS = ("auto", "random", "labels", "prototypes")


def resolve_head(config: "StudentConfig", samples: int, classes: int) -> str:
    """``auto``: a random linear head when there are enough samples per class to learn it in
    the epoch budget, else a cosine head started at the class prototypes of the candidate
    sets. Measured (bench/RESULTS.md): Banking77, 20 samples a class: candist 41.7 % with a
    random head, 69.1 % with prototypes (teacher 67.3); TREC, 250 a class: 56.9 % random,
    49.6 % prototypes (teacher 45.9), whose blurred 2.6-label sets make poor centroids."""
    if config.head_init != "auto":
        return config.head_init
    return "prototypes" if samples < config.prototypes_below * classes else "random"


class StudentModel(nn.Module):
    """Encoder + mean pooling + a linear head (all-MiniLM-L6-v2 is trained for mean pooling).

    With ``cosine=True`` the head is ``scale * normalize(pooled) @ W.T + b``, and
    :meth:`start_head_at` can start it at the embeddings of "name: description" of
    each label (where the offline teacher's zero-shot ranking is) or at class prototypes of
    the candidate sets (see ``StudentConfig.head_init`` and bench/RESULTS.md).
    """

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1,
                 cosine: bool = False, scale: float = 20.0):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)
        self.cosine = cosine
        self.scale = scale

    def embed(self, input_ids, attention_mask) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.cosine:
            return self.head(self.dropout(F.normalize(pooled, dim=-1)) * self.scale)
        return self.head(self.dropout(pooled))

    @torch.no_grad()
    def start_head_at(self, directions: torch.Tensor) -> None:
        """Head rows := the unit ``directions`` (C, hidden), bias 0: class c starts scoring
        a text by its cosine to direction c."""
        self.head.weight.copy_(F.normalize(directions.float(), dim=-1))
        self.head.bias.zero_()

    def forward(self, input_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.embed(input_ids, attention_mask)
        return self.classify(pooled), pooled


def set_targets(cand: torch.Tensor, fixed: torch.Tensor, fixed_targets: torch.Tensor
                ) -> torch.Tensor:
    """Uniform over each candidate set; a human label's one-hot where there is one."""
    return torch.where(fixed.unsqueeze(1), fixed_targets, uniform_targets(cand))


def class_prototypes(pooled: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(C, hidden) target-weighted means of the unit embeddings: a nearest-centroid start
    built from the candidate sets themselves (uniform over each set), not from the
    teacher's ranking inside a set. A class with no weight gets a zero row."""
    unit = F.normalize(pooled.float(), dim=-1)
    sums = targets.float().T @ unit
    return sums / targets.float().sum(0).clamp(min=1e-9).unsqueeze(1)


def load_student(model: str | None, num_labels: int, *, cosine: bool = False
                 ) -> tuple[StudentModel, object]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    path = resolve_model(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path)
    return StudentModel(encoder, num_labels, cosine=cosine), tokenizer


def choose_max_length(lengths: Sequence[int], *, cap: int = 128) -> int:
    """95th percentile of token lengths, rounded up to a multiple of 8, within [16, cap]."""
    if not lengths:
        return 16
    p95 = float(np.percentile(lengths, 95))
    return int(min(cap, max(16, math.ceil(p95 / 8) * 8)))


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, *, mask_id: int,
                special: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """The cheap offline stand-in for back-translation: mask a share ``p`` of the tokens."""
    noise = torch.rand(input_ids.shape, generator=generator).to(input_ids.device)
    maskable = attention_mask.bool() & ~special
    out = input_ids.clone()
    out[maskable & (noise < p)] = mask_id
    return out


class Distiller:
    """Trains one student. ``on_epoch(metrics)`` and ``on_step(done, total)`` report
    progress; ``cancel`` stops after the current batch (the best weights so far are kept)."""

    def __init__(self, config: StudentConfig, *, model: StudentModel | None = None,
                 tokenizer=None, on_epoch: Callable[[dict], None] | None = None,
                 on_step: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None):
        self.config = config
        self._model, self._tokenizer = model, tokenizer
        self.on_epoch = on_epoch or (lambda m: None)
        self.on_step = on_step or (lambda d, t: None)
        self.cancel = cancel or threading.Event()
        self.device = pick_device(config.device)

    @property
    def model(self) -> StudentModel | None:
        return self._model

    @property
    def tokenizer(self):
        return self._tokenizer

    # ----------------------------------------------------------------- helpers
    def _tokenize(self, texts: list[str], max_length: int | None) -> tuple[list[list[int]], int]:
        enc = self._tokenizer(texts, truncation=True, max_length=512, add_special_tokens=True)
        ids = enc["input_ids"]
        if max_length is None:
            max_length = choose_max_length([len(x) for x in ids])
        return [x[:max_length - 1] + [x[-1]] if len(x) > max_length else x for x in ids], \
            max_length

    def _batch(self, ids: list[list[int]], rows: Sequence[int]):
        width = max(len(ids[i]) for i in rows)
        pad = self._tokenizer.pad_token_id or 0
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for j, i in enumerate(rows):
            input_ids[j, :len(ids[i])] = torch.tensor(ids[i])
            attention[j, :len(ids[i])] = 1
        return input_ids.to(self.device), attention.to(self.device)

    def _autocast(self):
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast("cpu", enabled=False)

    @torch.inference_mode()
    def predict(self, model: StudentModel, ids: list[list[int]], rows: Sequence[int],
                *, batch_size: int = 128) -> torch.Tensor:
        """Softmax outputs of ``rows`` in eval mode (no dropout), aligned with ``rows``."""
        return self._classify(model, self.embed_rows(model, ids, rows, batch_size=batch_size))

    @torch.inference_mode()
    def _classify(self, model: StudentModel, pooled: torch.Tensor) -> torch.Tensor:
        """Softmax outputs of the head over pooled embeddings (eval mode)."""
        if not len(pooled):
            return torch.zeros((0, model.head.out_features))
        model.eval()
        return F.softmax(model.classify(pooled.to(self.device)).float(), 1).cpu()

    # ------------------------------------------------------------------ train
    def fit(self, data: TrainingData) -> FitResult:
        cfg = self.config
        _seed_everything(cfg.seed)
        head = self.head_start = resolve_head(cfg, int(data.trainable.sum()), len(data.labels))
        if self._model is None:
            self._model, self._tokenizer = load_student(cfg.model, len(data.labels),
                                                        cosine=head != "random")
        model = self._model.to(self.device)
        n, num_labels = len(data.texts), len(data.labels)
        ids, max_length = self._tokenize(data.texts, cfg.max_length)
        cand = data.cand.clone()
        fixed = data.fixed
        fixed_targets = F.one_hot(data.human.clamp(min=0), num_labels).float()
        trainable = data.trainable
        train_rows, val_rows, val_kind = self._split(data, trainable)
        if not train_rows:
            raise StudentError("Nothing to train on: the teacher run has no candidate sets "
                               "and there are no human labels.")
        epoch_probs = self.start_head(model, head, data, ids, max_length, train_rows,
                                      fixed_targets)
        components = cfg.components if cfg.method == "candist" else PLAIN
        steps_per_epoch = math.ceil(len(train_rows) / cfg.batch_size)
        self._setup_optimisation(model, steps_per_epoch * cfg.epochs)
        all_rows = list(range(n))
        history: list[dict] = []
        best: tuple[float, int, dict | None, torch.Tensor | None] = (-math.inf, 0, None, None)
        part = None
        cancelled = False
        for epoch in range(1, cfg.epochs + 1):
            started = time.perf_counter()
            refine = (cfg.method == "candist" and epoch > cfg.warmup_epochs
                      and self.step >= cfg.min_warmup_steps)
            if refine:  # Algorithm 1: the epoch's D_out, D_sl, D_hc from the current model
                part = partition(epoch_probs, cand, delta=cfg.delta, tau=cfg.tau,
                                 components=components, fixed=fixed)
            losses, cancelled = self._train_epoch(
                model, ids, train_rows, cand, fixed, fixed_targets, components, refine, part,
                epoch_probs)
            # One eval-mode pass over every sample feeds the next epoch's sets, the model
            # selection and, for the best epoch, the final predictions.
            epoch_probs = self.predict(model, ids, all_rows)
            metrics = self._evaluate(data, val_rows, val_kind, epoch_probs, cand, epoch,
                                     losses, part, started)
            history.append(metrics)
            if metrics["selection_score"] > best[0] and not cancelled:
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best = (metrics["selection_score"], epoch, state, epoch_probs)
            self.on_epoch(metrics)
            if cancelled:
                break
        final = best[3] if best[3] is not None else epoch_probs
        if best[2] is not None:
            model.load_state_dict(best[2])
        final_part = partition(final, cand | (~cand.any(1, keepdim=True)), delta=cfg.delta,
                               tau=cfg.tau, fixed=fixed)
        flags = {"out_of_candidate": (final_part.out & cand.any(1)).numpy(),
                 "high_confidence": final_part.high_conf.numpy(),
                 "small_loss": final_part.small_loss.numpy()}
        return FitResult(final.numpy(), history, best[1], flags, best[2], max_length,
                         cancelled)

    def start_head(self, model, head, data, ids, max_length, train_rows, fixed_targets
                   ) -> torch.Tensor:
        """Start a cosine head at the label descriptions or at the class prototypes, and
        return the "p" that Eq. 1 re-normalises in the first epoch.

        The paper's random head predicts about uniformly, hence "uniform over the set at the
        start"; a started head already ranks each set, and its own prediction is what Eq. 1
        asks for (``start_from_head``; Banking77: 69.1 -> 71.4 %, bench/RESULTS.md). One
        embedding pass over every sample feeds both the prototypes and that prediction.
        """
        uniform = uniform_targets(data.cand | data.fixed.unsqueeze(1))
        if not model.cosine or head == "random":
            return uniform
        every = range(len(ids))
        pooled = None
        if head == "labels" and data.label_texts:
            label_ids, _ = self._tokenize(data.label_texts, max_length)
            model.start_head_at(self.embed_rows(model, label_ids, range(len(label_ids))))
        elif head == "prototypes":
            pooled = self.embed_rows(model, ids, every)
            rows = torch.tensor(train_rows)
            targets = set_targets(data.cand[rows], data.fixed[rows], fixed_targets[rows])
            model.start_head_at(class_prototypes(pooled[rows], targets))
        else:                      # "labels" with no label texts: the head was not started
            return uniform
        if not self.config.start_from_head:
            return uniform
        return self._classify(model, pooled if pooled is not None
                              else self.embed_rows(model, ids, every))

    @torch.inference_mode()
    def embed_rows(self, model: StudentModel, ids, rows: Sequence[int], *,
                   batch_size: int = 128) -> torch.Tensor:
        """Pooled embeddings of ``rows`` in eval mode, batched by length, in row order."""
        model.eval()
        order = sorted(rows, key=lambda i: len(ids[i]))
        out = []
        for start in range(0, len(order), batch_size):
            with self._autocast():
                out.append(model.embed(*self._batch(ids, order[start:start + batch_size]))
                           .float().cpu())
        if not out:
            return torch.zeros((0, model.encoder.config.hidden_size))
        pooled = torch.cat(out)
        result = torch.empty_like(pooled)
        result[_inverse(order, rows)] = pooled
        return result

    def _setup_optimisation(self, model: StudentModel, total_steps: int) -> None:
        cfg = self.config
        self.total_steps = total_steps
        self.step = 0
        head = set(id(p) for p in model.head.parameters())
        self.optimizer = torch.optim.AdamW(
            [{"params": [p for p in model.parameters() if id(p) not in head]},
             {"params": list(model.head.parameters()), "lr": cfg.lr * cfg.head_lr_mult}],
            lr=cfg.lr, weight_decay=cfg.weight_decay)
        warmup = max(1, int(cfg.warmup_ratio * total_steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: min(
            (s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup))))
        self.scaler = torch.amp.GradScaler("cuda", enabled=(
            self.device.type == "cuda" and not torch.cuda.is_bf16_supported()))
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.special = torch.tensor(sorted(set(self._tokenizer.all_special_ids)))
        mask_id = self._tokenizer.mask_token_id
        self.mask_id = mask_id if mask_id is not None else (self._tokenizer.unk_token_id or 0)
        self.beta = torch.distributions.Beta(cfg.mixup_alpha, cfg.mixup_alpha)

    def _train_epoch(self, model, ids, train_rows, cand, fixed, fixed_targets, components,
                     refine, part, epoch_probs) -> tuple[list[float], bool]:
        cfg = self.config
        model.train()
        order = [train_rows[i] for i in torch.randperm(len(train_rows),
                                                       generator=self.generator).tolist()]
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            if self.cancel.is_set():
                return losses, True
            rows = order[start:start + cfg.batch_size]
            idx = torch.tensor(rows)
            input_ids, attention = self._batch(ids, rows)
            with self._autocast():
                logits, pooled = model(input_ids, attention)
            logits = logits.float()
            targets, weights = self._targets(cfg, components, refine, part, cand, idx,
                                             epoch_probs, fixed, fixed_targets)
            targets, weights = targets.to(self.device), weights.to(self.device)
            ce = soft_cross_entropy(logits, targets, logits=True)
            loss = (weights * ce).sum() / weights.sum().clamp(min=1.0)
            eta = cfg.eta_max * min(1.0, self.step / max(1, self.total_steps - 1))
            if cfg.method == "candist" and eta > 0:
                loss = loss + eta * self._regularisers(model, pooled, logits, targets, weights,
                                                       input_ids, attention)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.step += 1
            losses.append(float(loss.detach()))
            self.on_step(self.step, self.total_steps)
        return losses, False

    def _split(self, data: TrainingData, trainable: torch.Tensor):
        """Training rows, validation rows and which kind of validation they are."""
        cfg = self.config
        rng = random.Random(cfg.seed)
        human_rows = torch.nonzero(data.fixed).squeeze(1).tolist()
        if len(human_rows) >= cfg.min_human_validation:
            rng.shuffle(human_rows)
            k = max(cfg.min_human_validation, int(0.3 * len(human_rows)))
            val = sorted(human_rows[:k])
            kind = "human"
        else:
            teacher_rows = torch.nonzero(data.cand.any(1) & ~data.fixed).squeeze(1).tolist()
            rng.shuffle(teacher_rows)
            k = min(cfg.max_holdout, int(cfg.holdout * len(teacher_rows)))
            val = sorted(teacher_rows[:k])
            kind = "candidates"
        val_set = set(val)
        train = [i for i in torch.nonzero(trainable).squeeze(1).tolist() if i not in val_set]
        return train, val, kind

    def _targets(self, cfg, components, refine, part, cand, idx, epoch_probs, fixed,
                 fixed_targets):
        """Targets and weights of one batch: plain for the baselines (``sa`` trains on
        one-hot sets), Eq. 1 during warm-up, Eq. 5 after it; human rows fixed."""
        c, f = cand[idx], fixed[idx]
        if cfg.method in ("sa", "uniform"):
            targets = set_targets(c, f, fixed_targets[idx])
            return targets, torch.ones(len(idx))
        if refine:
            batch_part = Partition(part.out[idx], part.small_loss[idx], part.high_conf[idx])
        else:
            none = torch.zeros(len(idx), dtype=torch.bool)
            batch_part = Partition(none, none, none)
        # Eq. 1 re-normalises the prediction of the end of the previous epoch (uniform over
        # the set before the first), not the batch's own output: a target equal to the
        # output being trained feeds back on itself and lets early mistakes win.
        return refined_targets(epoch_probs[idx], c, batch_part, gamma=cfg.gamma,
                               components=components, fixed_targets=fixed_targets[idx],
                               fixed=f)

    def _regularisers(self, model, pooled, logits, targets, weights, input_ids, attention
                      ) -> torch.Tensor:
        """Mixup of pooled embeddings and targets, and consistency with a masked view."""
        cfg, generator = self.config, self.generator
        total = torch.zeros((), device=self.device)
        if cfg.mixup and len(pooled) > 1:
            keep = torch.nonzero(weights > 0).squeeze(1)
            if len(keep) > 1:
                omega = float(self.beta.sample())
                perm = keep[torch.randperm(len(keep), generator=generator).to(keep.device)]
                mixed = omega * pooled[keep] + (1 - omega) * pooled[perm]
                mixed_targets = omega * targets[keep] + (1 - omega) * targets[perm]
                total = total + soft_cross_entropy(model.classify(mixed.float()), mixed_targets,
                                                   logits=True).mean()
        if cfg.consistency > 0:
            k = max(1, int(round(cfg.consistency * len(input_ids))))
            rows = torch.randperm(len(input_ids), generator=generator)[:k].to(self.device)
            aug = mask_tokens(input_ids[rows], attention[rows], mask_id=self.mask_id,
                              special=torch.isin(input_ids[rows].cpu(),
                                                 self.special).to(self.device),
                              p=cfg.augment_p, generator=generator)
            with self._autocast():
                aug_logits, _ = model(aug, attention[rows])
            aug_logits = aug_logits.float()
            w = weights[rows]
            cr_in = (w * soft_cross_entropy(aug_logits, targets[rows], logits=True)).sum() \
                / w.sum().clamp(min=1.0)
            out = w == 0
            cr_out = torch.zeros((), device=self.device)
            if out.any():
                cr_out = F.kl_div(F.log_softmax(aug_logits[out], 1),
                                  F.softmax(logits[rows][out].detach(), 1),
                                  reduction="batchmean")
            total = total + cr_in + cr_out
        return total

    def _evaluate(self, data, val_rows, val_kind, probs, cand, epoch, losses, part,
                  started) -> dict:
        """The epoch's report; ``selection_score`` ranks epochs without gold labels."""
        metrics = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None,
                   "d_out": int(part.out.sum()) if part is not None else 0,
                   "d_sl": int(part.small_loss.sum()) if part is not None else 0,
                   "d_hc": int(part.high_conf.sum()) if part is not None else 0,
                   "validation": val_kind, "human_accuracy": None, "gold_accuracy": None,
                   "head": self.head_start}
        pred = probs.argmax(1)
        if val_rows:
            rows = torch.tensor(val_rows)
            if val_kind == "human":
                score = float((pred[rows] == data.human[rows]).float().mean())
                metrics["human_accuracy"] = score
            else:
                score = float(cand[rows].gather(1, pred[rows].unsqueeze(1)).float().mean())
            metrics["selection_score"] = score
        else:
            metrics["selection_score"] = float(epoch)  # nothing to select on: the last epoch
        gold = data.gold >= 0
        if gold.any():
            metrics["gold_accuracy"] = float((pred[gold] == data.gold[gold]).float().mean())
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        return metrics


def _inverse(order: list[int], rows: Sequence[int]) -> torch.Tensor:
    position = {row: j for j, row in enumerate(rows)}
    return torch.tensor([position[i] for i in order], dtype=torch.long)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def with_overrides(config: StudentConfig, **overrides) -> StudentConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
