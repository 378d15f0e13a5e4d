"""The teacher: candidate annotation behind one interface, and the run that records it.

Two teachers share :class:`Teacher`'s shape: :class:`OfflineTeacher` (zero-shot label
ranking with the sentence encoder; no key, no network) and ``llm_teacher.LLMTeacher``
(any OpenAI-compatible server). :func:`annotate_project` resumes the run with the same
settings, skips samples already annotated, writes each result to SQLite as it arrives and
returns a summary that counts every kind of failure.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from .demonstrations import DemoPool
from .embedding_cache import CachingEncoder, EmbeddingCache, cache_path
from .human_votes import HumanVoteConfig, HumanVotes, fit_human_votes
from .prompts import STRATEGIES, is_multi
from .records import LabelSchema, Sample, TeacherError, TeacherRun
from .schema import label_texts

Progress = Callable[[int, int, dict], None]


@dataclass(frozen=True)
class TeacherConfig:
    """Settings of one annotation run. Defaults follow the paper (temperature 0.3, 10
    shots) and, for the offline teacher, our measurements (bench/RESULTS.md)."""

    strategy: str = "ca_add"
    temperature: float = 0.3
    shots: int = 10
    concurrency: int = 8
    samples: int = 5          # K replies for the sc strategy
    top_k: int = 2            # keep the k most frequent labels of those K (1 = majority vote)
    max_tokens: int = 200
    timeout: float = 60.0     # seconds per request
    max_retries: int = 4      # the openai client's retries (its own backoff, Retry-After)
    # $ per 1k tokens for the cost estimate: gpt-4o-mini's list prices (the page's default
    # model), so that an estimate for a paid API errs toward a cost, never toward free.
    price_in_per_1k: float = 0.00015
    price_out_per_1k: float = 0.0006
    pool_size: int = 100      # generated demonstrations when no human labels exist
    # offline teacher: softmax temperature over cosine similarities and keep-ratios
    softmax_temperature: float = 0.05
    r_add: float = 0.5
    r_all: float = 0.3
    seed: int = 0

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise TeacherError(f"Unknown strategy {self.strategy!r}: use one of "
                               f"{', '.join(STRATEGIES)}.")
        if self.concurrency < 1:
            raise TeacherError("Concurrency must be at least 1.")
        if self.strategy == "sc" and not 1 <= self.top_k <= max(self.samples, 1):
            raise TeacherError("For sc, --top-k must be between 1 and --samples.")
        if not 0 < self.r_add <= 1 or not 0 < self.r_all <= 1:
            raise TeacherError("r_add and r_all must be in (0, 1].")

    def identity(self, teacher: str) -> dict:
        """The settings that change answers: two runs with equal identity are one run."""
        keys = ["strategy"]
        if teacher == "offline":
            keys += ["softmax_temperature"] + {"ca_add": ["r_add"], "ca_all": ["r_all"],
                                                "sc": ["samples", "top_k", "seed"]}.get(
                self.strategy, [])
        else:
            keys += ["temperature", "shots", "max_tokens"]
            if self.strategy == "sc":
                keys += ["samples", "top_k"]
        values = asdict(self)
        return {k: values[k] for k in keys}


@dataclass
class SampleResult:
    """One sample's annotation, or the reason there is none (``error_kind``)."""

    candidates: list[str] | None
    label: str | None
    confidence: float | None = None
    raw: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float | None = None
    error_kind: str | None = None
    error: str | None = None
    cache_key: str | None = None
    requests: int = 0
    cached: int = 0


class ReplyCache(Protocol):
    """Successful LLM replies by cache key (errors are never cached)."""

    def get(self, key: str) -> dict | None: ...

    def put(self, key: str, model: str, reply: dict) -> None: ...


class Teacher(Protocol):
    kind: str   # "offline" or "openai": part of a run's identity
    model: str
    uses_demonstrations: bool   # whether few-shot examples reach its prompts

    def annotate(self, schema: LabelSchema, samples: Sequence[Sample], config: TeacherConfig,
                 *, on_result: Callable[[Sample, SampleResult], None],
                 cancel: threading.Event, cache: ReplyCache | None = None,
                 demonstrations: DemoPool | None = None,
                 base_candidates: Mapping[int, list[str]] | None = None) -> None:
        """Call ``on_result`` once per sample as results arrive; stop early on ``cancel``.

        ``cache``: replies already paid for; ``demonstrations``: reviewed examples for
        few-shot prompts (None: the teacher finds its own, or none); ``base_candidates``:
        sample id -> the candidate set the ``select`` strategy chooses from.
        """


# --------------------------------------------------------------------------- offline
def rank_labels(similarities: np.ndarray, *, temperature: float) -> np.ndarray:
    """Softmax over label similarities; shape (n, C) -> (n, C)."""
    z = similarities / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def candidate_sets(probs: np.ndarray, *, strategy: str, r_add: float, r_all: float,
                   samples: int = 5, top_k: int = 2, seed: int = 0) -> list[list[int]]:
    """Label indices per row, most probable first.

    ``sa``: the top label. ``ca_add``: the top label plus labels with probability >=
    ``r_add`` x the top one. ``ca_all``: the same with ``r_all`` (a lower ratio, larger
    sets). ``sc``: ``samples`` draws from the distribution, the ``top_k`` most frequent.
    """
    order = np.argsort(-probs, axis=1)
    if strategy in ("sa", "select"):
        return [[int(row[0])] for row in order]
    if strategy == "sc":
        rng = np.random.default_rng(seed)
        out = []
        for p in probs:
            draws = Counter(rng.choice(len(p), size=samples, p=p).tolist())
            out.append([c for c, _ in sorted(draws.items(), key=lambda x: (-x[1], -p[x[0]]))]
                       [:top_k])
        return out
    ratio = r_add if strategy == "ca_add" else r_all
    top = probs.max(axis=1, keepdims=True)
    keep = probs >= ratio * top
    return [[int(j) for j in row if keep[i, j]] for i, row in enumerate(order)]


class OfflineTeacher:
    """Zero-shot teacher: cosine similarity between each text and "name: description" of
    each label, softmax with a temperature. Works with no key and no network.

    ``human``: human-labelled texts (review decisions, audit labels) whose embeddings vote
    with the label descriptions, as ``votes`` says (:mod:`candist_core.human_votes`); a
    text's own label never votes for itself.
    """

    kind = "offline"
    uses_demonstrations = False   # zero-shot; human labels come in as ``human`` instead

    def __init__(self, encoder, *, batch_size: int = 256, human: DemoPool | None = None,
                 votes: HumanVoteConfig | None = None):
        self.encoder = encoder
        self.model = encoder.name
        self.batch_size = batch_size
        self.human = human if human is not None and human.texts else None
        self.votes = votes or HumanVoteConfig()
        self._fitted: dict[tuple, tuple[HumanVotes, dict[str, int]]] = {}

    def human_votes(self, schema: LabelSchema, config: TeacherConfig
                    ) -> tuple[HumanVotes, dict[str, int]] | None:
        """The fitted votes of the human-labelled texts and each one's index by text (None
        without any); fitted once per label set and temperature."""
        if self.human is None:
            return None
        key = (tuple(schema.names), config.softmax_temperature)
        if key not in self._fitted:
            index = {n: i for i, n in enumerate(schema.names)}
            keep = [i for i, label in enumerate(self.human.labels) if label in index]
            if not keep:
                return None
            texts = [self.human.texts[i] for i in keep]
            vecs = self.encoder.encode(texts)
            probs = rank_labels(vecs @ self.encoder.encode(label_texts(schema)).T,
                                temperature=config.softmax_temperature)
            votes = fit_human_votes(probs, vecs, [index[self.human.labels[i]] for i in keep],
                                    kind=self.votes.kind, k=self.votes.k,
                                    temperature=config.softmax_temperature,
                                    weights=self.votes.weights)
            self._fitted[key] = (votes, {t: i for i, t in enumerate(texts)})
        return self._fitted[key]

    def probabilities(self, schema: LabelSchema, texts: list[str], config: TeacherConfig
                      ) -> np.ndarray:
        """Label probabilities (n, C): softmax over the label similarities, mixed with the
        human votes when the teacher has human-labelled texts."""
        vecs = self.encoder.encode(texts)
        probs = rank_labels(vecs @ self.encoder.encode(label_texts(schema)).T,
                            temperature=config.softmax_temperature)
        fitted = self.human_votes(schema, config)
        if fitted is None:
            return probs
        votes, own = fitted
        return votes.combine(probs, vecs, own=np.array([own.get(t, -1) for t in texts]))

    def similarities(self, schema: LabelSchema, texts: list[str]) -> np.ndarray:
        """Cosine similarity of each text to "name: description" of each label, (n, C)."""
        label_vecs = self.encoder.encode(label_texts(schema))
        return self.encoder.encode(texts) @ label_vecs.T

    def annotate(self, schema, samples, config, *, on_result, cancel, cache=None,
                 demonstrations=None, base_candidates=None) -> None:
        """Zero-shot: the cache, demonstrations and base candidates are not used."""
        if config.strategy == "select":
            raise TeacherError("The select strategy asks an LLM to choose from its own "
                               "candidates; use --teacher openai.")
        names = schema.names
        for start in range(0, len(samples), self.batch_size):
            if cancel.is_set():
                return
            batch = samples[start:start + self.batch_size]
            t0 = time.perf_counter()
            probs = self.probabilities(schema, [s.text for s in batch], config)
            sets = candidate_sets(probs, strategy=config.strategy, r_add=config.r_add,
                                  r_all=config.r_all, samples=config.samples,
                                  top_k=config.top_k, seed=config.seed + start)
            ms = (time.perf_counter() - t0) * 1000 / max(len(batch), 1)
            for sample, p, idx in zip(batch, probs, sets):
                on_result(sample, SampleResult(
                    candidates=[names[j] for j in idx], label=names[idx[0]],
                    confidence=float(p[idx[0]]), latency_ms=ms,
                    raw=" ".join(f"{names[j]}={p[j]:.3f}" for j in np.argsort(-p)[:5])))


# ------------------------------------------------------------------------ the run
@dataclass
class RunSummary:
    run_id: int
    total: int = 0
    already_done: int = 0
    annotated: int = 0
    failed: int = 0
    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    errors: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    status: str = "running"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["errors"] = dict(self.errors)
        return d

    def describe(self) -> str:
        """The run in one sentence, as the CLI prints it and the Annotate page shows it."""
        errors = ", ".join(f"{k} {v}" for k, v in self.errors.items()) or "none"
        return (f"Run #{self.run_id} {self.status}: {self.annotated} annotated now, "
                f"{self.already_done} already done, {self.failed} failed (errors: {errors}); "
                f"{self.requests} requests, {self.cached} cached replies, "
                f"{self.prompt_tokens + self.completion_tokens} tokens, ${self.cost:.4f}.")


def make_teacher(kind: str, *, model: str | None = None, base_url: str | None = None,
                 api_key: str | None = None, shots: int = 0) -> Teacher:
    """The teacher chosen with the CLI's flags or on the Annotate page.

    ``offline``: the sentence encoder at ``model`` (a local directory; default MiniLM).
    ``openai``: ``model`` on the OpenAI-compatible server at ``base_url`` (the key from
    ``api_key`` or OPENAI_API_KEY), with the encoder for demonstrations when ``shots`` > 0.
    """
    from .encoder import shared_encoder   # torch, loaded once a teacher is really wanted
    if kind == "offline":
        return OfflineTeacher(shared_encoder(model))
    if kind != "openai":
        raise TeacherError(f"Unknown teacher {kind!r}: use offline or openai.")
    if not model:
        raise TeacherError("The LLM teacher needs a model name (--model).")
    from .llm_teacher import LLMTeacher   # imports teacher: a module-level import would cycle
    return LLMTeacher.connect(base_url=base_url, model=model, api_key=api_key,
                              encoder=shared_encoder() if shots else None)


def annotate_project(store, project_id: int, teacher: Teacher, config: TeacherConfig, *,
                     limit: int | None = None, progress: Progress | None = None,
                     cancel: threading.Event | None = None,
                     samples: Sequence[Sample] | None = None,
                     params: Mapping | None = None, atomic: bool = False) -> RunSummary:
    """Annotate the project's samples (the first ``limit`` in import order), resuming the
    newest run with the same teacher, model and settings.

    ``samples``: annotate these instead; ``params``: more settings recorded in the run's
    params, so that the run is not a plain run's (``human_teacher`` uses both).
    ``atomic``: write the annotations in one transaction at the end instead of each as it
    arrives, so that the run becomes the current one whole or not at all (for a teacher
    that is fast and free, like the offline one in a continuous update; an LLM's paid
    replies are written as they arrive).
    """
    cancel = cancel or threading.Event()
    schema = store.label_schema(project_id)
    teacher = with_embedding_cache(store, project_id, teacher)
    samples = list(samples) if samples is not None else store.samples(project_id, limit=limit)
    if not samples:
        raise TeacherError("The project has no samples: import a file of texts first.")
    identity = {**config.identity(teacher.kind), **(params or {})}
    base_candidates = None
    if config.strategy == "select":
        base = _select_base_run(store, project_id)
        base_candidates = {r.sample_id: r.candidates
                           for r in store.annotations(base.id) if r.candidates}
        identity["base_run"] = base.id
    run_id = store.find_teacher_run(project_id, teacher=teacher.kind, model=teacher.model,
                                    strategy=config.strategy, params=identity)
    if run_id is None:
        run_id = store.create_teacher_run(project_id, teacher=teacher.kind, model=teacher.model,
                                          strategy=config.strategy, params=identity)
    else:
        store.set_teacher_run_status(run_id, "running")
    done = store.done_sample_ids(run_id)
    todo = [s for s in samples if s.id not in done]
    summary = RunSummary(run_id=run_id, total=len(samples), already_done=len(samples) - len(todo))
    start = time.perf_counter()
    lock = threading.Lock()

    buffered: list[dict] = []

    def on_result(sample: Sample, result: SampleResult) -> None:
        if atomic and not result.error_kind:
            buffered.append({"sample_id": sample.id, "candidates": result.candidates,
                             "label": result.label, "confidence": result.confidence,
                             "raw": result.raw})
        else:
            store.record_annotation(run_id, sample.id, candidates=result.candidates,
                                    label=result.label, confidence=result.confidence,
                                    raw=result.raw, prompt_tokens=result.prompt_tokens,
                                    completion_tokens=result.completion_tokens,
                                    latency_ms=result.latency_ms, error_kind=result.error_kind,
                                    error=result.error, cache_key=result.cache_key)
        with lock:
            summary.requests += result.requests
            summary.cached += result.cached
            summary.prompt_tokens += result.prompt_tokens
            summary.completion_tokens += result.completion_tokens
            if result.error_kind:
                summary.failed += 1
                summary.errors[result.error_kind] += 1
            else:
                summary.annotated += 1
            summary.cost = (summary.prompt_tokens * config.price_in_per_1k
                            + summary.completion_tokens * config.price_out_per_1k) / 1000
            if progress:
                progress(summary.already_done + summary.annotated + summary.failed,
                         summary.total, summary.to_dict())

    if progress:
        progress(summary.already_done, summary.total, summary.to_dict())
    try:
        teacher.annotate(schema, todo, config, on_result=on_result, cancel=cancel,
                         cache=StoreReplyCache(store), base_candidates=base_candidates,
                         demonstrations=human_demonstrations(store, project_id)
                         if teacher.uses_demonstrations and config.shots > 0 and todo
                         else None)
        if buffered and not cancel.is_set():
            store.record_annotations(run_id, buffered)
        elif buffered:                 # cancelled: nothing of an atomic run was written
            summary.annotated -= len(buffered)
    except BaseException as exc:
        summary.status = "failed"
        summary.seconds = time.perf_counter() - start
        store.set_teacher_run_status(run_id, "failed", {**summary.to_dict(),
                                                        "error": str(exc)[:500]})
        raise
    finally:
        save_embedding_cache(teacher)
    summary.seconds = time.perf_counter() - start
    if cancel.is_set():
        summary.status = "cancelled"
    elif summary.failed:
        summary.status = "incomplete"
    else:
        summary.status = "done"
    store.set_teacher_run_status(run_id, summary.status, summary.to_dict())
    return summary


def with_embedding_cache(store, project_id: int, teacher: Teacher) -> Teacher:
    """The offline teacher reading and filling the project's embedding cache
    (:mod:`embedding_cache`), so that a human-taught run later needs no encoder pass; any
    other teacher (or one already caching, or an in-memory database) as it is."""
    if not isinstance(teacher, OfflineTeacher) or isinstance(teacher.encoder, CachingEncoder):
        return teacher
    path = cache_path(store.path, store.project_by_id(project_id).name, teacher.model)
    if path is None:
        return teacher
    return OfflineTeacher(CachingEncoder.around(teacher.encoder, EmbeddingCache(path)),
                          batch_size=teacher.batch_size, human=teacher.human,
                          votes=teacher.votes)


def save_embedding_cache(teacher: Teacher) -> None:
    """Write what a teacher from :func:`with_embedding_cache` embedded (nothing for any
    other teacher)."""
    if isinstance(getattr(teacher, "encoder", None), CachingEncoder):
        teacher.encoder.save()


@dataclass(frozen=True)
class StoreReplyCache:
    """The store's LLM reply cache as a :class:`ReplyCache`."""

    store: object

    def get(self, key: str) -> dict | None:
        return self.store.cache_get(key)

    def put(self, key: str, model: str, reply: dict) -> None:
        self.store.cache_put(key, model, reply)


def human_demonstrations(store, project_id: int) -> DemoPool | None:
    """The reviewed samples with a human label, or None when there are none."""
    decisions = {sid: d.label for sid, d in store.current_decisions(project_id).items()
                 if d.action == "label"}
    if not decisions:
        return None
    samples = store.samples(project_id, ids=list(decisions))
    return DemoPool(tuple(s.text for s in samples), tuple(decisions[s.id] for s in samples),
                    "human")


def _select_base_run(store, project_id: int) -> TeacherRun:
    for run in store.teacher_runs(project_id):
        if is_multi(run.strategy) and store.done_sample_ids(run.id):
            return run
    raise TeacherError("The select strategy needs a candidate run first (ca_add, ca_all or "
                       "sc).")


def resumable_run(store, project_id: int, config: TeacherConfig, *, kind: str, model: str,
                  limit: int | None = None) -> tuple[int | None, int]:
    """(the teacher run that ``annotate_project`` would resume, how many of the first
    ``limit`` texts it has annotated already): what a page says before a run, so that it
    never offers to pay for texts already done. (None, 0) when a run would start afresh."""
    identity = config.identity(kind)
    if config.strategy == "select":
        try:
            identity["base_run"] = _select_base_run(store, project_id).id
        except TeacherError:
            return None, 0
    run_id = store.find_teacher_run(project_id, teacher=kind, model=model,
                                    strategy=config.strategy, params=identity)
    if run_id is None:
        return None, 0
    done = store.done_sample_ids(run_id)
    if limit is not None and limit < store.count_samples(project_id):
        # only then the texts themselves: a project may hold 100,000
        done &= {s.id for s in store.samples(project_id, limit=limit)}
    return run_id, len(done)


def plan_annotation(store, project_id: int, config: TeacherConfig, *, kind: str,
                    limit: int | None = None, samples: Sequence[Sample] | None = None
                    ) -> dict:
    """What a run would cost before spending: requests, estimated tokens and cost.

    ``samples``: plan for these texts only, with the reviewed texts as demonstrations (a
    re-annotation: no pool for the LLM to write)."""
    schema = store.label_schema(project_id)
    if samples is not None:
        count = len(samples)
        mean_chars = sum(len(s.text) for s in samples) / count if count else 0.0
    else:
        count, mean_chars = store.text_stats(project_id, limit=limit)
    if kind == "offline":
        return {"samples": count, "requests": 0, "prompt_tokens": 0,
                "completion_tokens": 0, "cost": 0.0}
    from .prompts import build_messages
    system = sum(len(m["content"]) for m in build_messages(schema, config.strategy, ""))
    per_request_in = (system + mean_chars * (1 + config.shots) + 30 * config.shots) / 4
    per_request_out = 12 if not is_multi(config.strategy) else 8 + 6 * min(3, len(schema.labels))
    factor = config.samples if config.strategy == "sc" else 1
    requests = count * factor
    pool_requests = len(schema.labels) if config.shots > 0 and samples is None else 0
    prompt_tokens = int(requests * per_request_in)
    completion_tokens = int(requests * per_request_out + pool_requests * 400)
    return {"samples": count, "requests": requests + pool_requests,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "cost": round((prompt_tokens * config.price_in_per_1k
                           + completion_tokens * config.price_out_per_1k) / 1000, 4)}

