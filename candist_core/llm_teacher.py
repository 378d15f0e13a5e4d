"""The LLM teacher: any OpenAI-compatible chat server (OpenAI, vLLM, Ollama, llama.cpp).

Requests run concurrently (bounded). The openai client retries what a retry can fix (429,
408/409, 5xx, timeouts, dropped connections) with its own backoff and jitter, honouring
``Retry-After``; we add only what it cannot do: step down the structured-output format when
a server rejects one, and re-ask when a reply body is not JSON. Every request sent, the
client's retries included, is counted by an HTTP event hook. Successful replies go to the
caller's :class:`~candist_core.teacher.ReplyCache` under a hash of (model, messages, sorted
parameters), so a re-run or a resumed run never pays twice. Failures become per-sample error
kinds, never exceptions, except those that doom the whole run (bad key, unknown model),
which stop it with a clear message. The API key lives only in memory and is scrubbed from
any recorded text.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import re
import threading
import time
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import openai

from .demonstrations import DemoPool
from .prompts import build_messages, is_multi, parse_reply, response_schema, system_prompt
from .records import LabelSchema, Sample, TeacherError
from .teacher import ReplyCache, SampleResult, TeacherConfig

STRUCTURED_MODES = ("json_schema", "json_object", "none")
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|[A-Za-z0-9_\-]{32,})")

ClientFactory = Callable[[openai.DefaultAsyncHttpxClient], openai.AsyncOpenAI]
"""Builds the run's OpenAI client on the given HTTP client (which counts the requests)."""


def cache_key(model: str, messages: list[dict], params: dict) -> str:
    blob = json.dumps({"model": model, "messages": messages,
                       "params": dict(sorted(params.items()))}, sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def redact(text: str, secrets: Sequence[str]) -> str:
    """Remove API keys (given ones and anything shaped like one) from text we record."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def error_kind(exc: Exception) -> str:
    """The error kind recorded for the client's final error, after its own retries."""
    if isinstance(exc, openai.RateLimitError):
        return "rate_limit"
    if isinstance(exc, openai.APITimeoutError):   # a subclass of APIConnectionError
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, (openai.BadRequestError, openai.UnprocessableEntityError)):
        return "bad_request"
    if isinstance(exc, openai.APIStatusError):
        return "server_error" if exc.status_code >= 500 else "client_error"
    return "malformed_response"   # APIResponseValidationError, or a body that is not JSON


@dataclass(frozen=True)
class Reply:
    """One chat reply (or the merged replies of a self-consistency vote), or why there is
    none (``error_kind``). ``requests``: requests sent for it, the client's retries
    included; ``cached``: replies taken from the cache instead."""

    content: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    requests: int = 0
    cached: int = 0
    key: str | None = None
    labels: tuple[str, ...] = ()
    error_kind: str | None = None
    error: str | None = None

    def cache_entry(self) -> dict:
        """What the reply cache keeps of a reply."""
        return {"content": self.content, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens}

    @classmethod
    def from_cache(cls, entry: dict, *, key: str) -> "Reply":
        """A reply taken from the cache (the inverse of :meth:`cache_entry`)."""
        return cls(entry["content"], entry["prompt_tokens"], entry["completion_tokens"],
                   cached=1, key=key)


class _Fatal(Exception):
    """A failure no retry can fix (bad key, unknown model): stop the whole run."""


@dataclass
class _Sent:
    count: int = 0


# The call running in this task; the request hook adds each request it sends (asyncio
# gives every worker task its own copy of the context, so concurrent calls stay apart).
_sending: ContextVar[_Sent | None] = ContextVar("candist_sending", default=None)


async def _count_request(request) -> None:
    """The HTTP client's request hook: called for every request sent, retries included."""
    sent = _sending.get()
    if sent is not None:
        sent.count += 1


@dataclass(frozen=True)
class _Run:
    """What every request of one run shares."""

    client: openai.AsyncOpenAI
    probe_client: openai.AsyncOpenAI   # the same without retries (see LLMTeacher._send)
    finding_format: asyncio.Lock
    schema: LabelSchema
    config: TeacherConfig
    cache: ReplyCache | None
    base_candidates: Mapping[int, list[str]] = field(default_factory=dict)


class LLMTeacher:
    """Candidate annotation through an OpenAI-compatible server.

    ``client_factory`` builds a fresh ``openai.AsyncOpenAI`` per run (a client is bound to
    the event loop it first ran on) on the HTTP client it is given, so that every request
    is counted. ``encoder`` embeds texts for demonstration retrieval; without one, prompts
    are zero-shot.
    """

    kind = "openai"

    def __init__(self, client_factory: ClientFactory, *, model: str, encoder=None,
                 secrets: Sequence[str] = ()):
        self.client_factory = client_factory
        self.model = model
        self.encoder = encoder
        self.secrets = tuple(s for s in secrets if s)
        self.structured_mode = STRUCTURED_MODES[0]
        self.structured_confirmed = False   # a structured reply has arrived (see _send)

    @classmethod
    def connect(cls, *, base_url: str | None, model: str, api_key: str | None = None,
                encoder=None) -> "LLMTeacher":
        """A teacher for a server; the key comes from the caller or OPENAI_API_KEY."""
        key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        if not base_url and key == "not-needed":
            raise TeacherError("No API key: set OPENAI_API_KEY, type a key for this session, "
                               "or give --base-url of a local OpenAI-compatible server.")

        def factory(http_client: openai.DefaultAsyncHttpxClient) -> openai.AsyncOpenAI:
            return openai.AsyncOpenAI(api_key=key, base_url=base_url or None,
                                      http_client=http_client)
        return cls(factory, model=model, encoder=encoder, secrets=[key])

    @property
    def uses_demonstrations(self) -> bool:
        """Few-shot prompts need the encoder that retrieves the nearest examples."""
        return self.encoder is not None

    # ------------------------------------------------------------------ interface
    def annotate(self, schema: LabelSchema, samples: Sequence[Sample], config: TeacherConfig,
                 *, on_result: Callable[[Sample, SampleResult], None],
                 cancel: threading.Event, cache: ReplyCache | None = None,
                 demonstrations: DemoPool | None = None,
                 base_candidates: Mapping[int, list[str]] | None = None) -> None:
        """Call ``on_result`` once per sample as replies arrive; stop early on ``cancel``.

        ``demonstrations``: the pool to retrieve few-shot examples from (None: the LLM
        writes one); ``base_candidates``: sample id -> candidate set, for ``select``.
        """
        if not samples:
            return
        asyncio.run(self._annotate(schema, list(samples), config, on_result, cancel, cache,
                                   demonstrations, base_candidates or {}))

    async def _annotate(self, schema, samples, config, on_result, cancel, cache,
                        demonstrations, base_candidates):
        # The SDK's own HTTP client (its timeouts and pool limits), with the counting hook.
        http_client = openai.DefaultAsyncHttpxClient(event_hooks={"request": [_count_request]})
        client = self.client_factory(http_client).with_options(
            max_retries=config.max_retries, timeout=config.timeout)
        run = _Run(client, client.with_options(max_retries=0), asyncio.Lock(), schema, config,
                   cache, base_candidates)
        try:
            demos = await self._demonstrations(run, samples, demonstrations)
            queue: asyncio.Queue = asyncio.Queue()
            for sample, sample_demos in zip(samples, demos):
                queue.put_nowait((sample, sample_demos))
            workers = [asyncio.create_task(self._worker(run, queue, on_result, cancel))
                       for _ in range(min(config.concurrency, len(samples)))]
            try:
                await asyncio.gather(*workers)
            except _Fatal as exc:
                for w in workers:
                    w.cancel()
                raise TeacherError(redact(str(exc), self.secrets)) from None
        finally:
            await client.close()

    async def _worker(self, run: _Run, queue: asyncio.Queue, on_result, cancel) -> None:
        while not queue.empty():
            if cancel.is_set():
                return
            sample, demos = queue.get_nowait()
            on_result(sample, await self._annotate_one(run, sample, demos))

    async def _annotate_one(self, run: _Run, sample: Sample, demos) -> SampleResult:
        schema, config = run.schema, run.config
        if config.strategy == "select":
            base = run.base_candidates.get(sample.id)
            if not base:
                return SampleResult(None, None, error_kind="no_candidates",
                                    error="no candidate set in the base run")
            if len(base) == 1:
                return SampleResult([base[0]], base[0], confidence=1.0, raw="(single candidate)")
            messages = build_messages(schema, "select", sample.text, demos=demos,
                                      candidates=base)
            reply = await self._complete(run, messages, multi=False, allowed=base)
            return _result(reply, reply.labels, confidence=1.0)
        messages = build_messages(schema, config.strategy, sample.text, demos=demos)
        if config.strategy != "sc":
            reply = await self._complete(run, messages, multi=is_multi(config.strategy))
            return _result(reply, reply.labels,
                           confidence=1.0 / len(reply.labels) if reply.labels else None)
        replies = [await self._complete(run, messages, multi=True, seed=config.seed + k)
                   for k in range(config.samples)]
        votes = Counter(label for r in replies for label in r.labels)
        merged = Reply(content=json.dumps([r.content for r in replies]),
                       prompt_tokens=sum(r.prompt_tokens for r in replies),
                       completion_tokens=sum(r.completion_tokens for r in replies),
                       latency_ms=sum(r.latency_ms for r in replies),
                       requests=sum(r.requests for r in replies),
                       cached=sum(r.cached for r in replies), key=replies[0].key)
        if not votes:
            last = replies[-1]
            return _result(replace(merged, error_kind=last.error_kind, error=last.error), ())
        order = sorted(votes, key=lambda l: (-votes[l], schema.names.index(l)))
        top = order[:config.top_k]
        return _result(merged, top, confidence=votes[top[0]] / len(replies))

    # --------------------------------------------------------------- one reply
    @staticmethod
    def _params(config: TeacherConfig, seed: int | None) -> dict:
        # Sampled replies (sc) need some temperature to differ at all.
        temperature = max(config.temperature, 0.5) if seed is not None else config.temperature
        params = {"temperature": temperature, "max_tokens": config.max_tokens}
        if seed is not None:
            params["seed"] = seed
        return params

    async def _complete(self, run: _Run, messages: list[dict], *, multi: bool,
                        allowed: Sequence[str] | None = None, seed: int | None = None
                        ) -> Reply:
        """One reply, from the cache or the server, with its labels parsed."""
        params = self._params(run.config, seed)
        key = cache_key(self.model, messages, params)
        hit = run.cache.get(key) if run.cache is not None else None
        if hit is not None:
            reply = Reply.from_cache(hit, key=key)
        else:
            names = list(allowed) if allowed is not None else run.schema.names
            reply = replace(await self._send(run, messages, params, _formats(
                response_schema(names, multi=multi))), key=key)
            if reply.error_kind:
                return reply
        parsed = parse_reply(reply.content, run.schema, multi=multi, allowed=allowed)
        if parsed.error_kind:
            return replace(reply, error_kind=parsed.error_kind,
                           error=f"reply names no valid label: {parsed.detail}"
                           if parsed.error_kind == "no_valid_label" else parsed.detail)
        if hit is None and run.cache is not None:
            run.cache.put(key, self.model, reply.cache_entry())
        return replace(reply, labels=parsed.labels)

    async def _send(self, run: _Run, messages: list[dict], params: dict,
                    formats: dict[str, dict]) -> Reply:
        """Ask the server through the client, whose retries handle 429, 5xx, timeouts and
        dropped connections. We only step down the structured format when the server
        rejects it and re-ask (up to ``max_retries`` times) when the body is not JSON.
        Never raises but _Fatal.

        Until one structured reply has arrived, a 400/422/5xx may mean "this server does
        not take this response_format" (llama-cpp-python answers 500, which the client
        would retry with backoff before we could step down). So one request at a time
        finds the format, the others waiting for it, and it goes first without the
        client's retries: rejected, the format steps down at once; failed otherwise (429,
        timeout, dropped connection), the request is sent again with them.
        """
        sent = _Sent()
        token = _sending.set(sent)
        started = time.perf_counter()
        finding = self.structured_mode != "none" and not self.structured_confirmed
        try:
            async with run.finding_format if finding else contextlib.nullcontext():
                reply = await self._ask(run, messages, params, formats)
        finally:
            _sending.reset(token)
        return replace(reply, latency_ms=_ms_since(started), requests=sent.count)

    async def _ask(self, run: _Run, messages: list[dict], params: dict,
                   formats: dict[str, dict]) -> Reply:
        reasks = 0
        probed = False
        while True:
            mode = self.structured_mode
            unconfirmed = mode != "none" and not self.structured_confirmed
            client = run.probe_client if unconfirmed and not probed else run.client
            try:
                response = await client.chat.completions.create(
                    model=self.model, messages=messages, **params, **formats[mode])
            except (openai.APIError, ValueError) as exc:
                self._raise_if_fatal(exc)
                kind = error_kind(exc)
                if unconfirmed and kind in ("bad_request", "server_error"):
                    self._step_down(mode)
                    probed = False
                    continue
                if unconfirmed and not probed and kind != "malformed_response":
                    probed = True
                    continue
                if kind == "malformed_response" and reasks < run.config.max_retries:
                    reasks += 1
                    continue
                return Reply(error_kind=kind, error=f"no reply within {run.config.timeout:g} s"
                             if kind == "timeout" else self._describe(exc))
            if mode != "none":
                self.structured_confirmed = True
            return _read_response(response)

    def _raise_if_fatal(self, exc: Exception) -> None:
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            raise _Fatal(f"The server refused the API key ({exc.status_code}): check the "
                         f"key for this server.") from None
        if isinstance(exc, openai.NotFoundError):
            raise _Fatal(f"The server does not know model {self.model!r} (404): check the "
                         f"model name and base URL.") from None

    def _step_down(self, mode: str) -> None:
        if self.structured_mode == mode:   # another request may have stepped down already
            i = STRUCTURED_MODES.index(mode)
            self.structured_mode = STRUCTURED_MODES[min(i + 1, len(STRUCTURED_MODES) - 1)]

    def _describe(self, exc: Exception) -> str:
        status = getattr(exc, "status_code", None)
        text = f"{status}: {exc}" if status else f"{type(exc).__name__}: {exc}"
        return redact(text, self.secrets)[:500]

    # ------------------------------------------------------------- demonstrations
    async def _demonstrations(self, run: _Run, samples: list[Sample],
                              pool: DemoPool | None) -> list[list[tuple[str, str]]]:
        if run.config.shots <= 0 or self.encoder is None:
            return [[] for _ in samples]
        if pool is None:
            pool = await self._generated_pool(run)
        return pool.retrieve([s.text for s in samples], self.encoder, k=run.config.shots)

    async def _generated_pool(self, run: _Run) -> DemoPool:
        """The paper's pool: the LLM writes ~``pool_size`` labeled example texts."""
        schema, config = run.schema, run.config
        per_label = max(1, math.ceil(config.pool_size / len(schema.labels)))
        params = {"temperature": max(config.temperature, 0.7),
                  "max_tokens": 60 * per_label + 50}
        texts, labels = [], []
        for label in schema.labels:
            messages = [{"role": "system", "content": system_prompt(schema, "sa")},
                        {"role": "user", "content":
                         f"Write {per_label} short, realistic and diverse example texts of the "
                         f"class '{label.name}'. Answer with JSON only: "
                         f'{{"texts": ["...", ...]}}.'}]
            key = cache_key(self.model, messages, params)
            hit = run.cache.get(key) if run.cache is not None else None
            reply = (Reply.from_cache(hit, key=key) if hit is not None else
                     await self._send(run, messages, params,
                                      _formats(_texts_schema(per_label), "texts")))
            found = _texts_from_reply(reply.content)[:per_label]
            if found and run.cache is not None and hit is None:
                run.cache.put(key, self.model, reply.cache_entry())
            texts += found
            labels += [label.name] * len(found)
        return DemoPool(tuple(texts), tuple(labels), "generated")


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _read_response(response) -> Reply:
    usage = getattr(response, "usage", None)
    reply = Reply(prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                  completion_tokens=getattr(usage, "completion_tokens", 0) or 0)
    choices = getattr(response, "choices", None)
    if not choices:
        return replace(reply, error_kind="empty_choices", error="the reply had no choices")
    return replace(reply, content=choices[0].message.content)


def _result(reply: Reply, labels: Sequence[str], *, confidence: float | None = None
            ) -> SampleResult:
    common = dict(raw=reply.content, prompt_tokens=reply.prompt_tokens,
                  completion_tokens=reply.completion_tokens, latency_ms=reply.latency_ms,
                  cache_key=reply.key, requests=reply.requests, cached=reply.cached)
    if not labels:
        return SampleResult(None, None, error_kind=reply.error_kind or "unparseable",
                            error=reply.error, **common)
    return SampleResult(list(labels), labels[0], confidence=confidence, **common)


def _formats(schema: dict, name: str = "labels") -> dict[str, dict]:
    """The request fields for each structured-output mode, most capable first."""
    return {
        "json_schema": {"response_format": {"type": "json_schema", "json_schema": {
            "name": name, "schema": schema, "strict": True}}},
        # llama.cpp's dialect: the schema rides inside a json_object response_format.
        "json_object": {"response_format": {"type": "json_object", "schema": schema}},
        "none": {},
    }


def _texts_from_reply(content: str | None) -> list[str]:
    if not content:
        return []
    match = re.search(r"\{.*\}", content, re.DOTALL)
    if match:
        try:
            data = json.loads(match.group(0))
            texts = data.get("texts") if isinstance(data, dict) else None
            if isinstance(texts, list):
                return [t.strip() for t in texts if isinstance(t, str) and t.strip()]
        except json.JSONDecodeError:
            pass
    lines = [re.sub(r"^\s*(\d+[.)]|[-*])\s*", "", line).strip().strip('"')
             for line in content.splitlines()]
    return [line for line in lines if len(line) > 3]


def _texts_schema(n: int) -> dict:
    return {"type": "object", "properties": {"texts": {
        "type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": n}},
        "required": ["texts"], "additionalProperties": False}
