"""The student: a transformers encoder fine-tuned on the teacher's candidate sets with
Distribution Refinery (method page §4), plus the ``sa`` and ``uniform`` baselines in the
same loop so they are compared with the same budget and model-selection rule.

:class:`Distiller` is the trainer: data, model and config come in, side effects leave
through callbacks. :meth:`Distiller.fit` reads top to bottom: one :class:`FitState` holds
what the run works on, each epoch re-partitions the samples (Algorithm 1), trains, predicts
every sample once and keeps the :class:`BestEpoch`. Targets and regularisers are module
functions of explicit tensors. Model selection needs no gold labels: held-out human
decisions when there are enough, else agreement with the candidate sets on a held-back
slice of teacher-annotated samples the student never trains on.
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
from .refinery import (Components, Partition, partition, refined_targets, soft_cross_entropy,
                       uniform_targets)

METHODS = ("candist", "sa", "uniform")
HEAD_INITS = ("auto", "random", "prototypes")
SELECTION_RULES = ("best", "one_se")
# Still accepted, no longer offered: a cosine head at the label descriptions copies the
# teacher's ranking and measured worse everywhere (bench/RESULTS.md, head-start experiments).
LEGACY_HEAD_INITS = ("labels",)

# Fixed settings of the regularisers (method page §4.6); no experiment ever changed them.
MIXUP_ALPHA = 4.0    # mixup weight omega ~ Beta(4, 4)
MASK_RATE = 0.15     # share of the tokens masked in the augmented view


# Epochs a set-based run may add when its labels have not settled (StudentConfig.extra).
EXTRA_EPOCHS = 4


@dataclass(frozen=True)
class StudentConfig:
    """Training settings; the defaults are the recommended ones (bench/RESULTS.md)."""

    method: str = "candist"
    model: str | None = None        # local transformers directory; default MiniLM-L6
    epochs: int = 4                 # the planned epochs (the learning rate decays over them)
    # Unsettled runs go on: while an epoch still changes at least ``settled`` of the
    # predictions, up to ``extra`` epochs more than planned (Distiller.fit; 0: off).
    extra_epochs: int | None = None     # None: by method, see ``extra``
    settled: float = 0.02
    patience: int = 0               # stop after this many epochs without a better score (0: off)
    selection_rule: str = "best"    # best | one_se (see tolerance)
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
    consistency: float = 0.25       # share of each batch given a masked view (0: off)
    mixup: bool = True              # mixup of pooled embeddings and targets
    head_init: str = "auto"         # auto | random | prototypes (see resolve_head)
    prototypes_below: float = 50.0  # auto: prototypes under this many samples per class
    prototypes_purity: float = 0.5  # ... or, set-based methods, sets this pure (set_purity)
    start_from_head: bool = True    # informed head: first Eq. 1 targets from its predictions
    holdout: float = 0.1            # held-back share for label-free model selection
    max_holdout: int = 500
    min_human_validation: int = 20  # human labels needed to select on them instead
    # Sample ids of audited texts held out for epoch selection (never trained on), from
    # audit.with_audit_selection; used first when at least min_human_validation are labeled.
    validation_ids: tuple[int, ...] = ()
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
        if self.selection_rule not in SELECTION_RULES:
            raise StudentError(f"Unknown selection rule {self.selection_rule!r}: use "
                               f"{' or '.join(SELECTION_RULES)}.")
        if self.extra_epochs is not None and self.extra_epochs < 0:
            raise StudentError("Extra epochs must be 0 (off) or more.")
        if not 0 <= self.settled <= 1:
            raise StudentError("settled is a share of the predictions, between 0 and 1.")
        if self.patience < 0:
            raise StudentError("Patience must be 0 (off) or more epochs.")
        if self.head_init not in HEAD_INITS + LEGACY_HEAD_INITS:
            raise StudentError(f"Unknown head start {self.head_init!r}: use "
                               f"{', '.join(HEAD_INITS)}.")

    @property
    def extra(self) -> int:
        """The extra epochs this run may add: ``extra_epochs`` if set, else
        :data:`EXTRA_EPOCHS` for the set-based methods and none for ``sa``. Its label-free
        score (agreement with the teacher's one label) rises as it learns the teacher's
        mistakes by heart, so a longer run picks a worse epoch (TREC 50.7 -> 47.9 %);
        CanDist's targets over the set do not reward that (bench/RESULTS.md, Session 13)."""
        if self.extra_epochs is not None:
            return self.extra_epochs
        return 0 if self.method == "sa" else EXTRA_EPOCHS

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
    label_texts: list[str] | None = None   # "name: description", for the legacy labels head
    teacher: torch.Tensor | None = None    # the teacher's top label index or -1 (label issues)

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
    pooled: torch.Tensor | None = None  # (N, hidden) embeddings of the best epoch's encoder


def set_purity(cand: torch.Tensor, fixed: torch.Tensor) -> float:
    """How much of a candidate-set prototype is expected to be its own class, above chance:
    ``(mean 1/|s| - 1/C) / (1 - 1/C)`` over the trainable rows, a human label counting as
    a set of one. A prototype (uniform over each set) is the mean of the texts whose set
    holds the class, each weighted 1/|s|; if a text's label is any of its set's labels
    alike, the share of that weight from the class's own texts is mean(1/|s|), and 1/C
    when every set holds every label. 0: the sets say nothing; 1: every set has one label."""
    sizes = torch.where(fixed, torch.ones_like(fixed, dtype=torch.long), cand.sum(1))
    sizes = sizes[sizes > 0].float()
    classes = cand.shape[1]
    if not len(sizes) or classes < 2:
        return 1.0
    chance = 1.0 / classes
    return float(((1.0 / sizes).mean() - chance) / (1 - chance))


def resolve_head(config: StudentConfig, samples: int, classes: int, *,
                 purity: float = 0.0) -> str:
    """``auto``: a cosine head started at the class prototypes of the candidate sets when
    a random head has too few samples per class to be learned in the epoch budget, or,
    for the set-based methods, when the sets are pure enough to make good centroids
    (:func:`set_purity` at least ``prototypes_purity``); else a random linear head.

    Measured (bench/RESULTS.md, Sessions 3 and 14): Banking77, 20 samples a class: candist
    41.7 % random, 71.4 % prototypes (teacher 67.3). Purity: TREC's 2.6-label sets (0.46)
    make blurred centroids: 56.9 % random, 49.6 % prototypes; Medical Abstracts' 1.5-label
    sets (0.76): 56.0 % random, 58.5 % prototypes; the simulated strong teacher's 1.7-label
    sets on the TREC pool (0.66): 89.5 % random, 90.5 % prototypes. ``sa``'s one label is
    the teacher's guess, whose errors a set of one does not show: it keeps the data rule
    (its prototypes lost on TREC, 50.7 -> 46.1 %, and Medical Abstracts, 57.8 -> 57.0 %)."""
    if config.head_init != "auto":
        return config.head_init
    if samples < config.prototypes_below * classes:
        return "prototypes"
    pure = config.method != "sa" and purity >= config.prototypes_purity
    return "prototypes" if pure else "random"


class StudentModel(nn.Module):
    """Encoder + mean pooling + a linear head (all-MiniLM-L6-v2 is trained for mean pooling).

    With ``cosine=True`` the head is ``scale * normalize(pooled) @ W.T + b``, and
    :meth:`start_head_at` can start it at class prototypes of the candidate sets (see
    ``StudentConfig.head_init`` and bench/RESULTS.md).
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


def load_student(model: str | None, num_labels: int, *, cosine: bool = False
                 ) -> tuple[StudentModel, object]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    path = resolve_model(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path)
    return StudentModel(encoder, num_labels, cosine=cosine), tokenizer


# --------------------------------------------------------------- pure pieces of the loop
def choose_max_length(lengths: Sequence[int], *, cap: int = 128) -> int:
    """95th percentile of token lengths, rounded up to a multiple of 8, within [16, cap]."""
    if not lengths:
        return 16
    p95 = float(np.percentile(lengths, 95))
    return int(min(cap, max(16, math.ceil(p95 / 8) * 8)))


def lr_factor(step: int, *, warmup: int, total: int) -> float:
    """Learning-rate factor after ``step`` optimiser steps: linear warm-up to 1 over the
    first ``warmup`` steps, then linear decay to 0 at ``total``.

    ``transformers.get_linear_schedule_with_warmup`` has the same decay, but its warm-up
    is ``step / warmup``: the first step trains at lr 0 and every warm-up step at one step
    less. The recorded accuracies (bench/RESULTS.md) were made with this schedule, so it
    stays (tests/test_student.py compares the two)."""
    return min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))


@dataclass
class Schedule:
    """The learning-rate factor by optimiser step: :func:`lr_factor` over the planned
    epochs; each extension (:meth:`extend`) restarts at ``restart_peak`` of the peak and
    decays linearly to 0 at its own end, the same decay as the plan's (a warm restart,
    Loshchilov & Hutter 2017), without touching the steps already taken."""

    warmup: int
    planned: int                  # the planned run's last step
    end: int = 0                  # the last step of the latest extension (0: none)
    restart: int = 0              # the step it started at
    restart_peak: float = 0.5

    def __call__(self, step: int) -> float:
        if not self.end or step < self.restart:
            return lr_factor(step, warmup=self.warmup, total=self.planned)
        return self.restart_peak * max(0.0, (self.end - step) / max(1, self.end - self.restart))

    def extend(self, at: int, steps: int) -> None:
        self.restart, self.end = at, at + steps


def goes_on(epoch: int, *, planned: int, limit: int, changed: float, settled: float,
            best_epoch: int, previous_plan: int) -> bool:
    """Whether a run that ends its plan at ``epoch`` gets more epochs: its last epoch still
    changed at least ``settled`` of the labels (it has not converged), it is under its
    ``limit``, and, after a first extension, that extension found the best epoch so far
    (the selection score still improves: issue #13's "until the selection signal stops
    improving")."""
    return (epoch == planned < limit and changed >= settled
            and best_epoch > previous_plan)


def tolerance(best: float, n: int, rule: str) -> float:
    """How far under the best selection score an epoch may score and still be picked.
    ``one_se``: one binomial standard error of the best score on ``n`` validation rows
    (Breiman's one-standard-error rule, here favouring the later epoch): two epochs whose
    scores differ by less than the noise of the validation slice are not told apart by
    it, and soft targets over several labels converge more slowly than one-hot ones, so
    the later epoch is the better bet. ``best``: strictly the highest score."""
    if rule != "one_se" or n <= 0 or not 0 <= best <= 1:
        return 0.0
    return math.sqrt(best * (1 - best) / n)


@dataclass(frozen=True)
class Split:
    """Training rows, validation rows and what validates them (``human`` | ``candidates``)."""

    train: list[int]
    val: list[int]
    validation: str


def split_rows(data: TrainingData, *, seed: int, min_human_validation: int,
               holdout: float, max_holdout: int, validation_ids: Sequence[int] = ()) -> Split:
    """Audited texts (``validation_ids``: a uniform random sample labeled blind, so an
    unbiased check) validate when at least ``min_human_validation`` of them have a human
    label. Else human decisions validate when there are at least that many (30 % of
    them, at least that many); else a ``holdout`` share (at most ``max_holdout``) of the
    teacher-annotated rows, never trained on. Seeded, so the split is the same every run."""
    rng = random.Random(seed)
    human_rows = torch.nonzero(data.fixed).squeeze(1).tolist()
    audited = set(validation_ids)
    audit_rows = [i for i in human_rows if data.sample_ids[i] in audited]
    if audited and len(audit_rows) >= min_human_validation:
        val, validation = audit_rows, "audit"
    elif len(human_rows) >= min_human_validation:
        rng.shuffle(human_rows)
        k = max(min_human_validation, int(0.3 * len(human_rows)))
        val, validation = sorted(human_rows[:k]), "human"
    else:
        teacher_rows = torch.nonzero(data.cand.any(1) & ~data.fixed).squeeze(1).tolist()
        rng.shuffle(teacher_rows)
        k = min(max_holdout, int(holdout * len(teacher_rows)))
        val, validation = sorted(teacher_rows[:k]), "candidates"
    held = set(val)
    train = [i for i in torch.nonzero(data.trainable).squeeze(1).tolist() if i not in held]
    return Split(train, val, validation)


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


def batch_targets(method: str, *, probs: torch.Tensor, cand: torch.Tensor,
                  fixed: torch.Tensor, fixed_targets: torch.Tensor, part: Partition | None,
                  gamma: float, components: Components) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C) targets and (B,) weights of one batch, every tensor the batch's rows.

    ``sa`` and ``uniform``: uniform over the set (``sa``'s sets hold one label), weight 1.
    ``candist``: Eq. 5 over the epoch's partition ``part`` (``None`` in warm-up: Eq. 1
    alone). ``probs`` is the prediction of the end of the previous epoch (the head's start
    before the first), not the batch's own output: a target equal to the output being
    trained feeds back on itself and lets early mistakes win. Human rows keep their one-hot.
    """
    if method in ("sa", "uniform"):
        return set_targets(cand, fixed, fixed_targets), torch.ones(len(cand))
    if part is None:
        none = torch.zeros(len(cand), dtype=torch.bool)
        part = Partition(none, none, none)
    return refined_targets(probs, cand, part, gamma=gamma, components=components,
                           fixed_targets=fixed_targets, fixed=fixed)


def mixup_loss(classify: Callable[[torch.Tensor], torch.Tensor], pooled: torch.Tensor,
               targets: torch.Tensor, weights: torch.Tensor, *,
               generator: torch.Generator) -> torch.Tensor:
    """Mixup of pooled embeddings and their targets among the rows that have a target
    (weight > 0), ``omega ~ Beta(4, 4)``: the mean soft cross entropy of the mixed rows.
    Zero with fewer than two such rows (then nothing is drawn)."""
    keep = torch.nonzero(weights > 0).squeeze(1)
    if len(keep) < 2:
        return torch.zeros((), device=pooled.device)
    omega = float(torch.distributions.Beta(MIXUP_ALPHA, MIXUP_ALPHA).sample())
    perm = keep[torch.randperm(len(keep), generator=generator).to(keep.device)]
    mixed = omega * pooled[keep] + (1 - omega) * pooled[perm]
    mixed_targets = omega * targets[keep] + (1 - omega) * targets[perm]
    return soft_cross_entropy(classify(mixed.float()), mixed_targets, logits=True).mean()


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, *, mask_id: int,
                special: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """The cheap offline stand-in for back-translation: mask a share ``p`` of the tokens."""
    noise = torch.rand(input_ids.shape, generator=generator).to(input_ids.device)
    maskable = attention_mask.bool() & ~special
    out = input_ids.clone()
    out[maskable & (noise < p)] = mask_id
    return out


def masked_view(input_ids: torch.Tensor, attention_mask: torch.Tensor, *, share: float,
                mask_id: int, special_ids: torch.Tensor, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """A random ``share`` of the batch's rows (at least one) and their masked input ids."""
    k = max(1, int(round(share * len(input_ids))))
    rows = torch.randperm(len(input_ids), generator=generator)[:k].to(input_ids.device)
    ids = input_ids[rows]
    special = torch.isin(ids.cpu(), special_ids).to(ids.device)
    return rows, mask_tokens(ids, attention_mask[rows], mask_id=mask_id, special=special,
                             p=MASK_RATE, generator=generator)


def consistency_losses(view_logits: torch.Tensor, logits: torch.Tensor,
                       targets: torch.Tensor, weights: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Consistency of a masked view with its original rows: (in-set term, out-of-set term).
    Rows with a target (weight > 0): weighted cross entropy of the view against it; rows
    without (out-of-candidate): KL from the original's (detached) prediction to the view's."""
    in_set = (weights * soft_cross_entropy(view_logits, targets, logits=True)).sum() \
        / weights.sum().clamp(min=1.0)
    out = weights == 0
    out_of_set = torch.zeros((), device=logits.device)
    if out.any():
        out_of_set = F.kl_div(F.log_softmax(view_logits[out], 1),
                              F.softmax(logits[out].detach(), 1), reduction="batchmean")
    return in_set, out_of_set


def review_flags(probs: torch.Tensor, cand: torch.Tensor, *, fixed: torch.Tensor,
                 delta: float, tau: float) -> dict[str, np.ndarray]:
    """Per-sample flags of the final predictions for the review queue (Eq. 2-4); a sample
    with no candidate set counts every label as a candidate."""
    part = partition(probs, cand | (~cand.any(1, keepdim=True)), delta=delta, tau=tau,
                     fixed=fixed)
    return {"out_of_candidate": (part.out & cand.any(1)).numpy(),
            "high_confidence": part.high_conf.numpy(),
            "small_loss": part.small_loss.numpy()}


# ------------------------------------------------------------------------- the trainer
@dataclass
class FitState:
    """What one :meth:`Distiller.fit` works on, built before the first epoch."""

    ids: list[list[int]]            # token ids of every sample, cut to max_length
    head: str                       # how the head started (reported with every epoch)
    cand: torch.Tensor              # (N, C) candidate masks
    fixed: torch.Tensor             # (N,) rows with a human label ...
    fixed_targets: torch.Tensor     # (N, C) ... and their one-hot targets
    split: Split
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    schedule: Schedule
    scaler: torch.amp.GradScaler
    generator: torch.Generator      # batch order, mixup pairs, masked views
    special_ids: torch.Tensor       # never masked
    mask_id: int
    total_steps: int
    step: int = 0


@dataclass
class BestEpoch:
    """The epoch model selection prefers so far: its score, weights and predictions."""

    score: float = -math.inf
    epoch: int = 0
    state: dict | None = None
    probs: torch.Tensor | None = None
    pooled: torch.Tensor | None = None    # its text embeddings (for head-only updates)


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

    # ------------------------------------------------------------------ train
    def fit(self, data: TrainingData) -> FitResult:
        from transformers import set_seed
        cfg = self.config
        set_seed(cfg.seed)
        trainable = data.trainable
        head = resolve_head(cfg, int(trainable.sum()), len(data.labels),
                            purity=set_purity(data.cand[trainable], data.fixed[trainable]))
        if self._model is None:
            self._model, self._tokenizer = load_student(cfg.model, len(data.labels),
                                                        cosine=head != "random")
        model = self._model.to(self.device)
        ids, max_length = self.tokenize(data.texts, max_length=cfg.max_length)
        split = split_rows(data, seed=cfg.seed, min_human_validation=cfg.min_human_validation,
                           validation_ids=cfg.validation_ids,
                           holdout=cfg.holdout, max_holdout=cfg.max_holdout)
        if not split.train:
            raise StudentError("Nothing to train on: the teacher run has no candidate sets "
                               "and there are no human labels.")
        fixed_targets = F.one_hot(data.human.clamp(min=0), len(data.labels)).float()
        probs = self.start_head(data, head=head, ids=ids, max_length=max_length,
                                train_rows=split.train, fixed_targets=fixed_targets)
        run = self._fit_state(data, head=head, ids=ids, split=split,
                              fixed_targets=fixed_targets)
        history: list[dict] = []
        best, pick = BestEpoch(), BestEpoch()   # the best score; the epoch selection picks
        cancelled = False
        planned, epoch, previous_plan = cfg.epochs, 0, 0
        while epoch < planned:
            epoch += 1
            started = time.perf_counter()
            part = None
            if (cfg.method == "candist" and epoch > cfg.warmup_epochs
                    and run.step >= cfg.min_warmup_steps):
                # Algorithm 1: the epoch's D_out, D_sl, D_hc from the current model.
                part = partition(probs, run.cand, delta=cfg.delta, tau=cfg.tau,
                                 components=cfg.components, fixed=run.fixed)
            previous = probs
            losses, cancelled = self._train_epoch(run, probs=probs, part=part)
            # One eval-mode pass over every sample feeds the next epoch's sets, the model
            # selection and, for the best epoch, the final predictions.
            pooled = self.embed_rows(ids, range(len(ids)))
            probs = self._probabilities(pooled)
            metrics = self._epoch_report(data, run, probs=probs, epoch=epoch, losses=losses,
                                         part=part, started=started)
            # How far the epoch moved the predictions: a label-free sign of convergence.
            metrics["changed"] = float((probs.argmax(1) != previous.argmax(1)).float().mean())
            history.append(metrics)
            score = metrics["selection_score"]
            close = cfg.selection_rule == "one_se" and score >= best.score - tolerance(
                best.score, metrics["selection_n"], cfg.selection_rule)
            if not cancelled and (score > best.score or close):
                pick = BestEpoch(score, epoch, {k: v.detach().cpu().clone()
                                                for k, v in model.state_dict().items()},
                                 probs, pooled)
                if score > best.score:
                    best = pick
            if not cancelled and goes_on(epoch, planned=planned, limit=cfg.epochs + cfg.extra,
                                         changed=metrics["changed"], settled=cfg.settled,
                                         best_epoch=best.epoch, previous_plan=previous_plan):
                previous_plan, planned = planned, self._extend(run, epoch, metrics)
            self.on_epoch(metrics)
            if cancelled or (cfg.patience and epoch - best.epoch >= cfg.patience):
                break
        final = pick.probs if pick.probs is not None else probs
        if pick.state is not None:
            model.load_state_dict(pick.state)
        flags = review_flags(final, run.cand, fixed=run.fixed, delta=cfg.delta, tau=cfg.tau)
        return FitResult(final.numpy(), history, pick.epoch, flags, pick.state, max_length,
                         cancelled, pick.pooled if pick.pooled is not None else pooled)

    def _extend(self, run: FitState, epoch: int, metrics: dict) -> int:
        """Plan more epochs for a run whose last epoch still changed many predictions: the
        fixed budget underfits soft targets over large sets on some data (issue #13), and
        CanDist's targets do not memorise a teacher's mistakes the way one-hot targets do
        (bench/RESULTS.md, Session 13). Half the planned epochs more, at most
        ``extra`` beyond the plan; the model selection still picks among all epochs.
        Returns the new planned total."""
        cfg = self.config
        extra = min(max(1, cfg.epochs // 2), cfg.epochs + cfg.extra - epoch)
        per_epoch = math.ceil(len(run.split.train) / cfg.batch_size)
        run.schedule.extend(run.step, extra * per_epoch)
        run.total_steps = run.step + extra * per_epoch
        metrics["extended"] = extra
        return epoch + extra

    def _fit_state(self, data: TrainingData, *, head: str, ids: list[list[int]],
                   split: Split, fixed_targets: torch.Tensor) -> FitState:
        cfg, tokenizer = self.config, self._tokenizer
        total_steps = math.ceil(len(split.train) / cfg.batch_size) * cfg.epochs
        optimizer = torch.optim.AdamW(self._model.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
        warmup = max(1, int(cfg.warmup_ratio * total_steps))
        schedule = Schedule(warmup=warmup, planned=total_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        scaler = torch.amp.GradScaler("cuda", enabled=(
            self.device.type == "cuda" and not torch.cuda.is_bf16_supported()))
        mask_id = tokenizer.mask_token_id
        return FitState(
            ids=ids, head=head, cand=data.cand, fixed=data.fixed, fixed_targets=fixed_targets,
            split=split, optimizer=optimizer, scheduler=scheduler, schedule=schedule,
            scaler=scaler,
            generator=torch.Generator().manual_seed(cfg.seed),
            special_ids=torch.tensor(sorted(set(tokenizer.all_special_ids))),
            mask_id=mask_id if mask_id is not None else (tokenizer.unk_token_id or 0),
            total_steps=total_steps)

    def _train_epoch(self, run: FitState, *, probs: torch.Tensor, part: Partition | None
                     ) -> tuple[list[float], bool]:
        """One pass over the training rows in a seeded order; (batch losses, cancelled)."""
        cfg, model = self.config, self._model
        model.train()
        train = run.split.train
        order = [train[i] for i in torch.randperm(len(train), generator=run.generator).tolist()]
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            if self.cancel.is_set():
                return losses, True
            loss = self._batch_loss(run, order[start:start + cfg.batch_size], probs=probs,
                                    part=part)
            run.optimizer.zero_grad(set_to_none=True)
            run.scaler.scale(loss).backward()
            run.scaler.unscale_(run.optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            run.scaler.step(run.optimizer)
            run.scaler.update()
            run.scheduler.step()
            run.step += 1
            losses.append(float(loss.detach()))
            self.on_step(run.step, run.total_steps)
        return losses, False

    def _batch_loss(self, run: FitState, rows: list[int], *, probs: torch.Tensor,
                    part: Partition | None) -> torch.Tensor:
        """``L_dr`` of the batch plus, for ``candist``, ``eta * (L_mix + L_cr_in + L_cr_out)``
        with ``eta`` ramped linearly 0 -> 1 over the run."""
        cfg, model = self.config, self._model
        idx = torch.tensor(rows)
        input_ids, attention = self._batch(run.ids, rows)
        logits, pooled = self._forward(input_ids, attention)
        batch_part = None if part is None else Partition(part.out[idx], part.small_loss[idx],
                                                         part.high_conf[idx])
        targets, weights = batch_targets(
            cfg.method, probs=probs[idx], cand=run.cand[idx], fixed=run.fixed[idx],
            fixed_targets=run.fixed_targets[idx], part=batch_part, gamma=cfg.gamma,
            components=cfg.components)
        targets, weights = targets.to(self.device), weights.to(self.device)
        ce = soft_cross_entropy(logits, targets, logits=True)
        loss = (weights * ce).sum() / weights.sum().clamp(min=1.0)
        eta = min(1.0, run.step / max(1, run.schedule.planned - 1))
        if cfg.method != "candist" or eta <= 0:
            return loss
        regularisers = torch.zeros((), device=self.device)
        if cfg.mixup:
            regularisers = regularisers + mixup_loss(model.classify, pooled, targets, weights,
                                                     generator=run.generator)
        if cfg.consistency > 0:
            view_rows, view = masked_view(input_ids, attention, share=cfg.consistency,
                                          mask_id=run.mask_id, special_ids=run.special_ids,
                                          generator=run.generator)
            view_logits, _ = self._forward(view, attention[view_rows])
            cr_in, cr_out = consistency_losses(view_logits, logits[view_rows],
                                               targets[view_rows], weights[view_rows])
            regularisers = regularisers + cr_in + cr_out
        return loss + eta * regularisers

    def _epoch_report(self, data: TrainingData, run: FitState, *, probs: torch.Tensor,
                      epoch: int, losses: list[float], part: Partition | None,
                      started: float) -> dict:
        """The epoch's metrics; ``selection_score`` ranks epochs without gold labels."""
        metrics = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None,
                   "selection_n": len(run.split.val),
                   "d_out": int(part.out.sum()) if part is not None else 0,
                   "d_sl": int(part.small_loss.sum()) if part is not None else 0,
                   "d_hc": int(part.high_conf.sum()) if part is not None else 0,
                   "validation": run.split.validation, "human_accuracy": None,
                   "gold_accuracy": None, "head": run.head,
                   "step_losses": [round(x, 4) for x in losses]}   # the per-step curve
        pred = probs.argmax(1)
        if run.split.val:
            rows = torch.tensor(run.split.val)
            if run.split.validation in ("human", "audit"):
                score = float((pred[rows] == data.human[rows]).float().mean())
                metrics["human_accuracy"] = score
            else:
                score = float(run.cand[rows].gather(1, pred[rows].unsqueeze(1)).float().mean())
                # Other label-free signals, recorded to be compared with gold (bench/).
                metrics["selection_set_mass"] = float(
                    (probs[rows] * run.cand[rows].float()).sum(1).mean())
            metrics["selection_score"] = score
        else:
            metrics["selection_score"] = float(epoch)  # nothing to select on: the last epoch
        gold = data.gold >= 0
        if gold.any():
            metrics["gold_accuracy"] = float((pred[gold] == data.gold[gold]).float().mean())
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        return metrics

    # ------------------------------------------------------- head start and inference
    def start_head(self, data: TrainingData, *, head: str, ids: list[list[int]],
                   max_length: int, train_rows: list[int], fixed_targets: torch.Tensor
                   ) -> torch.Tensor:
        """Start a cosine head at the class prototypes (or, legacy, the label descriptions)
        and return the "p" that Eq. 1 re-normalises in the first epoch.

        The paper's random head predicts about uniformly, hence "uniform over the set at the
        start"; a started head already ranks each set, and its own prediction is what Eq. 1
        asks for (``start_from_head``; Banking77: 69.1 -> 71.4 %, bench/RESULTS.md). One
        embedding pass over every sample feeds both the prototypes and that prediction.
        """
        model = self._model
        uniform = uniform_targets(data.cand | data.fixed.unsqueeze(1))
        if not model.cosine or head == "random":
            return uniform
        every = range(len(ids))
        pooled = None
        if head == "labels" and data.label_texts:
            label_ids, _ = self.tokenize(data.label_texts, max_length=max_length)
            model.start_head_at(self.embed_rows(label_ids, range(len(label_ids))))
        elif head == "prototypes":
            pooled = self.embed_rows(ids, every)
            rows = torch.tensor(train_rows)
            targets = set_targets(data.cand[rows], data.fixed[rows], fixed_targets[rows])
            model.start_head_at(class_prototypes(pooled[rows], targets))
        else:                      # "labels" with no label texts: the head was not started
            return uniform
        if not self.config.start_from_head:
            return uniform
        return self._probabilities(pooled if pooled is not None else self.embed_rows(ids, every))

    def tokenize(self, texts: list[str], *, max_length: int | None = None
                 ) -> tuple[list[list[int]], int]:
        """Token ids of ``texts`` cut to ``max_length`` (None: :func:`choose_max_length` of
        these texts), keeping the closing special token; and that length."""
        ids = self._tokenizer(texts, truncation=True, max_length=512)["input_ids"]
        if max_length is None:
            max_length = choose_max_length([len(x) for x in ids])
        # The same cut as the tokenizer's own truncation, without tokenizing twice.
        return [x[:max_length - 1] + [x[-1]] if len(x) > max_length else x for x in ids], \
            max_length

    @torch.inference_mode()
    def predict(self, ids: list[list[int]], rows: Sequence[int], *, batch_size: int = 128
                ) -> torch.Tensor:
        """Softmax outputs of ``rows`` in eval mode (no dropout), aligned with ``rows``."""
        return self._probabilities(self.embed_rows(ids, rows, batch_size=batch_size))

    @torch.inference_mode()
    def embed_rows(self, ids: list[list[int]], rows: Sequence[int], *, batch_size: int = 128
                   ) -> torch.Tensor:
        """Pooled embeddings of ``rows`` in eval mode, batched by length, in row order."""
        model = self._model
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
        position = {row: j for j, row in enumerate(rows)}
        result[torch.tensor([position[i] for i in order], dtype=torch.long)] = pooled
        return result

    @torch.inference_mode()
    def _probabilities(self, pooled: torch.Tensor) -> torch.Tensor:
        """Softmax outputs of the head over pooled embeddings (eval mode)."""
        model = self._model
        if not len(pooled):
            return torch.zeros((0, model.head.out_features))
        model.eval()
        return F.softmax(model.classify(pooled.to(self.device)).float(), 1).cpu()

    def _batch(self, ids: list[list[int]], rows: Sequence[int]
               ) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self._tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def _forward(self, input_ids: torch.Tensor, attention: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training-mode logits (as float32) and pooled embeddings, mixed precision on CUDA."""
        with self._autocast():
            logits, pooled = self._model(input_ids, attention)
        return logits.float(), pooled

    def _autocast(self):
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast("cpu", enabled=False)


def with_overrides(config: StudentConfig, **overrides) -> StudentConfig:
    """``config`` with the overrides that are not None (the CLI's unset flags)."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
