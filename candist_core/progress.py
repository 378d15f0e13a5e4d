"""What a distillation is doing and how long it will take: an estimate before it starts
(from the runs this database has already timed) and, while it runs, named stages and a
steady ETA built from the trainer's ``on_step`` / ``on_epoch`` callbacks.

No Streamlit here: the Distill page shows these, and a CLI could print them.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime

# The first run's guess, before any run is timed on the machine: seconds per token and
# epoch (a pass of training plus the epoch's prediction pass), and a fixed start (loading the
# model, tokenizing). Measured (bench/RESULTS.md "Default distillation time"): 2,000 texts of
# ~55 tokens, 4 epochs, 428 s on 2 CPU cores, i.e. 1 ms a token-epoch. A text costs at least
# 16 tokens (its special tokens and the batch's padding) and at most the 128-token cut. The
# start was 30 s and the floor 32 tokens: 49 s for the demo's 150 texts of ~12 tokens, which
# train in 15-20 s (two walks); now 8 + 9.6 = 18 s.
SECONDS_PER_TOKEN_EPOCH = {"cpu": 1e-3, "mps": 1.25e-4, "cuda": 1.25e-5}
START_SECONDS = {"cpu": 8.0, "mps": 8.0, "cuda": 8.0}
CHARS_PER_TOKEN = 4.0
# While a run is timed, the estimate made before it weighs as much as this many timed steps.
PRIOR_STEPS = 5
MIN_TOKENS, MAX_TOKENS = 16, 128
# How much each older timed run counts against the next newer one: the latest run weighs
# most (a walk saw a 43 s run leave the estimate at the 69 s of the two runs before it).
RECENCY = 0.5
# Runs read for the estimate: the 20th newest weighs 0.5 ** 19 (2e-6) of the newest, so
# reading further back would change nothing.
TIMED_RUNS = 20


@dataclass(frozen=True)
class Estimate:
    seconds: float
    measured: bool      # from runs timed on this machine, or only a rough default
    runs: int           # how many runs it is based on
    busy: float = 1.0   # the rough guess's slow-down for other work on the cores (busy_factor)

    def describe(self) -> str:
        """"about 54 s, measured on this machine: ..." (no brackets: the pages put the
        sentence in brackets or after a colon themselves)."""
        if not self.measured:
            how = "a rough guess: no run timed on this machine yet; the first one calibrates it"
            if self.busy > 1.05:
                how += (f"; counted {self.busy:.1f}x slower because other work keeps the "
                        f"processor busy")
        elif self.runs == 1:
            how = "measured on this machine by the one run timed so far"
        else:
            how = (f"measured on this machine by its {self.runs} latest runs, the newest "
                   f"counting most")
        return f"about {format_duration(self.seconds)}, {how}"


@dataclass(frozen=True)
class TimedRun:
    """A finished full distillation as this machine timed it."""

    texts: int
    epochs: int                         # epochs run
    seconds: float                      # wall time, from created to finished
    epoch_seconds: float | None = None  # of which the epochs (training and prediction
    #                                     passes); None for runs that did not record it

    @property
    def start_seconds(self) -> float:
        """The part that does not grow with the epochs: loading the model, tokenizing, the
        head start's embedding pass, writing the predictions, saving the model."""
        return max(0.0, self.seconds - self.epoch_seconds) if self.epoch_seconds else 0.0

    @property
    def seconds_per_text_epoch(self) -> float:
        """One text through one epoch. Per text, not per training step, so that a run at
        another batch size still predicts the next one."""
        spent = self.epoch_seconds if self.epoch_seconds else self.seconds
        return spent / (self.texts * self.epochs)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def seconds_between(start: str, end: str | None) -> float | None:
    """Seconds from one stored ISO time to another (None without an end or when either is
    unreadable): how long a run took."""
    if not end:
        return None
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


def timed_runs(store, *, limit: int = TIMED_RUNS) -> list[TimedRun]:
    """The latest finished full distillations of every project in the database, newest
    first: this machine's measured throughput (head updates, seconds each, say nothing of
    it). Read again on every call, so a run that has just finished counts at once."""
    finished = []
    for project in store.list_projects():
        for run in store.student_runs(project.id):
            took = seconds_between(run.created, run.finished)
            if run.status == "done" and took and run.epochs and "update_of" not in run.config:
                finished.append((run.id, run, took))
    finished.sort(key=lambda item: item[0], reverse=True)
    out = []
    for _, run, took in finished:     # newest first; counting predictions only as needed
        texts = store.count_predictions(run.id)
        if texts:
            epoch_seconds = [e.get("seconds") for e in run.epochs]
            spent = (sum(epoch_seconds) if all(isinstance(x, (int, float))
                                               for x in epoch_seconds) else None)
            out.append(TimedRun(texts, len(run.epochs), took,
                                spent if spent and spent <= took else None))
            if len(out) == limit:
                break
    return out


def busy_factor(load: float, cores: int, threads: int) -> float:
    """How much slower a run using ``threads`` of ``cores`` goes while other work keeps
    ``load`` cores busy (the 1-minute load average, read before the run starts): the
    threads share the cores with it. A walk's first run took 111 s against a 49 s guess
    while a benchmark kept both cores busy: (2 + 2) / 2 = 2x."""
    cores, threads = max(1, cores), max(1, min(threads, cores))
    return max(1.0, (max(0.0, load) + threads) / cores)


def _cpu_seconds_busy() -> float | None:
    """CPU-seconds all cores have spent busy since boot (Linux ``/proc/stat``), or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(x) for x in fields[1:]]
    busy = sum(ticks[:8]) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)   # less idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def other_load(interval: float = 0.3) -> float | None:
    """Cores kept busy by other processes now: the machine's busy CPU time over
    ``interval`` seconds less this process's own, per second. None where it cannot be read
    (then the 1-minute load average stands in). The load average counts this process's
    own recent work too: a walk's first guess read 71 s right after the app itself had
    annotated the texts, and the run took 15 s."""
    before, mine = _cpu_seconds_busy(), os.times()
    if before is None:
        return None
    time.sleep(interval)
    after, mine_after = _cpu_seconds_busy(), os.times()
    own = (mine_after.user - mine.user) + (mine_after.system - mine.system)
    return max(0.0, (after - before - own) / interval)


def machine_busy(device: str = "cpu") -> float:
    """:func:`busy_factor` of this machine now (1 on an accelerator, whose speed the load
    average does not tell, or where no load can be read)."""
    if device != "cpu":
        return 1.0
    load = other_load()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return 1.0
    import torch
    return busy_factor(load, os.cpu_count() or 1, torch.get_num_threads())


def estimate_distillation(timed: list[TimedRun], *, texts: int, epochs: int,
                          device: str = "cpu", mean_chars: float = 200.0,
                          busy: float = 1.0) -> Estimate:
    """Seconds a run over ``texts`` texts for ``epochs`` epochs should take.

    From ``timed`` (newest first, see :func:`timed_runs`): a fixed start plus seconds per text and
    epoch, each a mean over the runs weighted :data:`RECENCY` ** k for the k-th newest, so
    the latest run counts most and one odd run is not the whole story. Without timed runs,
    a guess from the texts' mean length (``mean_chars``) and
    :data:`SECONDS_PER_TOKEN_EPOCH` of ``device``, times ``busy`` (:func:`machine_busy`).
    (The guess was 0.8 s a text-epoch: 8 min for the 150 short demo texts that train in
    about a minute.) Timed runs already carry the load they ran under, so ``busy`` does
    not scale them."""
    runs = [r for r in timed if r.texts and r.epochs]
    if runs:
        weights = [RECENCY ** k for k in range(len(runs))]
        total = sum(weights)
        rate = sum(w * r.seconds_per_text_epoch for w, r in zip(weights, runs)) / total
        start = sum(w * r.start_seconds for w, r in zip(weights, runs)) / total
        return Estimate(start + rate * texts * epochs, True, len(runs))
    kind = device if device in SECONDS_PER_TOKEN_EPOCH else "cpu"
    tokens = min(MAX_TOKENS, max(MIN_TOKENS, mean_chars / CHARS_PER_TOKEN))
    busy = max(1.0, busy)
    return Estimate(busy * (START_SECONDS[kind] + SECONDS_PER_TOKEN_EPOCH[kind] * tokens
                            * texts * epochs), False, 0, busy)


@dataclass
class DistillProgress:
    """Feed it the trainer's callbacks; read :attr:`stage` and :meth:`eta_seconds`.

    Stages: preparing (loading the model, tokenizing, the head start's embedding pass),
    training epoch k of n, predicting every text after epoch k (model selection), then
    writing predictions and saving the model. The ETA is the measured step rate times the
    steps left plus the measured prediction pass times the passes left, so the time spent
    preparing never inflates it; over the first timed steps it is blended with the
    estimate made before the run (see :data:`PRIOR_STEPS`).
    """

    epochs: int
    clock: object = time.monotonic
    estimate: float | None = None   # seconds expected before it starts (shown until timed)
    stage: str = "preparing: loading the model, tokenizing, embedding the texts"
    done: int = 0
    total: int = 0
    started: float = field(default=0.0)
    _train_start: float | None = None
    _train_seconds: float = 0.0
    _trained_steps: int = 0
    _segment_steps: int = 0
    _segment_start: float | None = None
    _predict_seconds: list = field(default_factory=list)
    _predict_start: float | None = None
    _last_step: float | None = None
    epochs_done: int = 0
    extended: str = ""              # why the run went past its plan, said with each stage
    _shown: float = 0.0             # the largest fraction() returned so far

    def __post_init__(self):
        self.started = self.clock()

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.total / max(1, self.epochs)))

    def on_step(self, done: int, total: int) -> None:
        now = self.clock()
        if self._segment_start is None:
            self._segment_start = now
            self._segment_steps = done     # steps finished before it was timed
        self.done, self.total = done, total
        self._last_step = now
        epoch = min(self.epochs, math.ceil(done / self.steps_per_epoch))
        if done % self.steps_per_epoch == 0 or done == total:
            self._train_seconds += now - self._segment_start
            self._trained_steps += done - self._segment_steps
            self._segment_start = None
            self._predict_start = now
            self.stage = (f"predicting every text after epoch {epoch} of {self.epochs} "
                          f"(to pick the best epoch)")
        else:
            self.stage = f"training: epoch {epoch} of {self.epochs}{self.extended}"

    def on_epoch(self, metrics: dict) -> None:
        now = self.clock()
        if self._predict_start is not None:
            self._predict_seconds.append(now - self._predict_start)
            self._predict_start = None
        self.epochs_done = int(metrics.get("epoch", self.epochs_done + 1))
        if metrics.get("extended"):
            # The run goes on (its predictions had not settled): the step count and the ETA
            # count the new epochs at once, not from the next step on (a walk saw a full bar
            # "about 1 s left" beside "epoch 2 of 2").
            per_epoch = self.steps_per_epoch
            self.epochs = self.epochs_done + int(metrics["extended"])
            self.total = per_epoch * self.epochs
            self.extended = (f" (extended: epoch {self.epochs_done} still changed "
                             f"{metrics.get('changed', 0):.0%} of the student's labels from "
                             f"the epoch before)")
        if self.epochs_done >= self.epochs:
            self.stage = "writing the predictions and saving the model"
        else:
            self.stage = f"training: epoch {self.epochs_done + 1} of {self.epochs}{self.extended}"

    def fraction(self) -> float:
        """How far the run is, for the progress bar: the time spent over the time spent
        plus :meth:`eta_seconds`, so the bar moves while every text is predicted after an
        epoch (the step count stands still then: a walk saw "5/20" for 12 s and took the
        run for stuck) and agrees with the time said to be left. Never goes back, and
        stays below 1 until the last step is done."""
        eta = self.eta_seconds()
        if eta is None:
            share = self.done / self.total if self.total else 0.0
        else:
            spent = max(0.0, self.clock() - self.started)
            share = spent / (spent + eta) if spent + eta > 0 else 0.0
        if not self.total or self.done < self.total:
            share = min(share, 0.99)
        self._shown = max(self._shown, min(1.0, share))
        return self._shown

    def eta_seconds(self) -> float | None:
        """Seconds left, or None until the first steps have been timed."""
        trained = self._trained_steps
        seconds = self._train_seconds
        now = self.clock()
        if self._segment_start is not None:
            # Only finished steps set the rate: a step still running must not inflate it.
            trained += self.done - self._segment_steps
            seconds += (self._last_step or now) - self._segment_start
        if not trained or seconds <= 0 or not self.total:
            if self.estimate is None:
                return None
            return max(0.0, self.estimate - (now - self.started))
        rate = seconds / trained
        steps_left = self.total - self.done
        left = steps_left * rate
        if self._segment_start is not None and self._last_step is not None and steps_left:
            # The step under way counts down, but never below the steps after it.
            left = max(left - (now - self._last_step), (steps_left - 1) * rate)
        if self._predict_seconds:
            per_pass = sum(self._predict_seconds) / len(self._predict_seconds)
        else:   # a prediction pass is about one forward pass per text: ~1/3 of an epoch
            per_pass = seconds / trained * self.steps_per_epoch / 3
        passes_left = self.epochs - self.epochs_done
        if self._predict_start is not None:
            passes_left -= 1
            left += max(0.0, per_pass - (now - self._predict_start))
        left += passes_left * per_pass
        if self.estimate is not None:
            # The first steps are slow (threads and caches warming up): two walks saw 37 s
            # left jump to 89 s for a 69 s run. The estimate weighs as much as PRIOR_STEPS
            # timed steps, so the measured rate takes over within a few steps. What it says
            # is left is its share for the steps left: counted down by the clock instead, it
            # reached 0 halfway through a run that took twice the estimate, and held a
            # measured 48 s left down to 31 s (a walk).
            prior = self.estimate * steps_left / self.total
            weight = trained / (trained + PRIOR_STEPS)
            left = weight * left + (1 - weight) * max(0.0, prior)
        return left
