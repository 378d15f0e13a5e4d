"""What a distillation is doing and how long it will take: an estimate before it starts
(from the runs this database has already timed) and, while it runs, named stages and a
steady ETA built from the trainer's ``on_step`` / ``on_epoch`` callbacks.

No Streamlit here: the Distill page shows these, and a CLI could print them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime

# Rough seconds per text and epoch (everything included: loading, tokenizing, training,
# the per-epoch prediction pass) before this machine has timed a run of its own.
# CPU: a 300-text, 1-epoch MiniLM run took 246 s on a 2-core laptop (issue 14).
# The first run's guess, before any run is timed on the machine: seconds per token and
# epoch (a pass of training plus the epoch's prediction pass), and a fixed start (loading the
# model, tokenizing). Measured (bench/RESULTS.md "Default distillation time"): 2,000 texts of
# ~55 tokens, 4 epochs, 428 s on 2 CPU cores, i.e. 1 ms a token-epoch. A text costs at least
# its padding to 32 tokens and at most the 128-token cut.
SECONDS_PER_TOKEN_EPOCH = {"cpu": 1e-3, "mps": 1.25e-4, "cuda": 1.25e-5}
START_SECONDS = {"cpu": 30.0, "mps": 20.0, "cuda": 15.0}
CHARS_PER_TOKEN = 4.0
# While a run is timed, the estimate made before it weighs as much as this many timed steps.
PRIOR_STEPS = 5
MIN_TOKENS, MAX_TOKENS = 32, 128


@dataclass(frozen=True)
class Estimate:
    seconds: float
    measured: bool      # from runs timed on this machine, or only a rough default
    runs: int           # how many runs it is based on

    def describe(self) -> str:
        how = (f"measured on this machine ({self.runs} earlier run"
               f"{'s' if self.runs != 1 else ''})" if self.measured else
               "a rough guess: no run timed on this machine yet; the first one calibrates it")
        return f"about {format_duration(self.seconds)} ({how})"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _seconds_between(start: str, end: str | None) -> float | None:
    if not end:
        return None
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


def timed_runs(store, *, limit: int = 5) -> list[tuple[int, int, float]]:
    """(texts, epochs run, wall seconds) of the latest finished full distillations of every
    project in the database: this machine's measured throughput (head updates, seconds
    each, say nothing of it)."""
    out = []
    for project in store.list_projects():
        for run in store.student_runs(project.id):
            took = _seconds_between(run.created, run.finished)
            if run.status == "done" and took and run.epochs and "update_of" not in run.config:
                texts = store.count_predictions(run.id)
                if texts:
                    out.append((run.id, texts, len(run.epochs), took))
    out.sort(reverse=True)
    return [(texts, epochs, took) for _, texts, epochs, took in out[:limit]]


def estimate_distillation(timed: list[tuple[int, int, float]], *, texts: int, epochs: int,
                          device: str = "cpu", mean_chars: float = 200.0) -> Estimate:
    """Seconds a run over ``texts`` texts for ``epochs`` epochs should take, from
    ``timed`` (see :func:`timed_runs`; the median seconds per text and epoch), else a guess
    from the texts' mean length (``mean_chars``) and :data:`SECONDS_PER_TOKEN_EPOCH` of
    ``device``. (The guess was 0.8 s a text-epoch: 8 min for the 150 short demo texts that
    train in about a minute.)"""
    rates = sorted(took / (n * e) for n, e, took in timed if n and e)
    if rates:
        rate = rates[len(rates) // 2]
        return Estimate(rate * texts * epochs, True, len(rates))
    kind = device if device in SECONDS_PER_TOKEN_EPOCH else "cpu"
    tokens = min(MAX_TOKENS, max(MIN_TOKENS, mean_chars / CHARS_PER_TOKEN))
    return Estimate(START_SECONDS[kind] + SECONDS_PER_TOKEN_EPOCH[kind] * tokens * texts
                    * epochs, False, 0)


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
            self.stage = f"training: epoch {epoch} of {self.epochs}"

    def on_epoch(self, metrics: dict) -> None:
        now = self.clock()
        if self._predict_start is not None:
            self._predict_seconds.append(now - self._predict_start)
            self._predict_start = None
        self.epochs_done = int(metrics.get("epoch", self.epochs_done + 1))
        if self.epochs_done >= self.epochs:
            self.stage = "writing the predictions and saving the model"
        else:
            self.stage = f"training: epoch {self.epochs_done + 1} of {self.epochs}"

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
            # left jump to 89 s for a 69 s run. The estimate counting down weighs as much as
            # PRIOR_STEPS timed steps, so the measured rate takes over within a few steps.
            weight = trained / (trained + PRIOR_STEPS)
            left = weight * left + (1 - weight) * max(0.0, self.estimate - (now - self.started))
        return left
