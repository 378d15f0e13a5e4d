"""The LLM teacher: any OpenAI-compatible chat server (OpenAI, vLLM, Ollama, llama.cpp).

Requests run concurrently (bounded), retry 429 / 5xx / timeouts / dropped connections with
exponential backoff and jitter (honouring ``Retry-After``), and every successful reply is
cached in SQLite under a hash of (model, messages, sorted parameters), so a re-run or a
resumed run never pays twice. Failures become per-sample error records, never exceptions,
except those that doom the whole run (bad key, unknown model), which stop it with a clear
message. The API key lives only in memory and is scrubbed from any recorded text.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import threading
import time
from collections import Counter
from typing import Callable, Sequence

import openai

from .demos import DemoPool, exclude_self, human_pool
from .prompts import build_messages, is_multi, parse_reply, response_schema, system_prompt
from .records import LabelSchema, Sample, TeacherError
from .teacher import SampleResult, TeacherConfig

STRUCTURED_MODES = ("json_schema", "json_object", "none")
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|[A-Za-z0-9_\-]{32,})")


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


def retry_after_seconds(exc: openai.APIStatusError) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return min(float(value), 120.0) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


class _Fatal(Exception):
    """A failure no retry can fix (bad key, unknown model): stop the whole run."""


class ReplyCache:
    """Successful replies in the store's llm_cache table (errors are never cached)."""

    def __init__(self, store):
        self.store = store

    def get(self, key: str) -> dict | None:
        return self.store.cache_get(key)

    def put(self, key: str, model: str, reply: dict) -> None:
        self.store.cache_put(key, model, reply)


class LLMTeacher:
    """Candidate annotation through an OpenAI-compatible server.

    ``client_factory`` returns a fresh ``openai.AsyncOpenAI`` per run (a client is bound
    to the event loop it first ran on). ``encoder`` embeds texts for demonstration
    retrieval; without one, prompts are zero-shot.
    """

    kind = "openai"

    def __init__(self, client_factory: Callable[[], openai.AsyncOpenAI], *, model: str,
                 encoder=None, secrets: Sequence[str] = ()):
        self.client_factory = client_factory
        self.model = model
        self.encoder = encoder
        self.secrets = tuple(s for s in secrets if s)
        self.structured_mode = STRUCTURED_MODES[0]
        # Until one structured request succeeds, an error status may mean "this server
        # does not take this response_format" (llama.cpp answers 500, others 400/422).
        self.structured_confirmed = False
        self.timing = {"wait_s": 0.0, "busy_s": 0.0, "jobs": 0}
        self.max_in_flight = 0
        self._in_flight = 0

    @classmethod
    def connect(cls, *, base_url: str | None, model: str, api_key: str | None = None,
                timeout: float = 60.0, encoder=None) -> "LLMTeacher":
        """Build a teacher for a server; the key comes from the caller or OPENAI_API_KEY."""
        import os
        key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        if not base_url and key == "not-needed":
            raise TeacherError("No API key: set OPENAI_API_KEY, type a key for this session, "
                               "or give --base-url of a local OpenAI-compatible server.")

        def factory() -> openai.AsyncOpenAI:
            return openai.AsyncOpenAI(api_key=key, base_url=base_url or None, max_retries=0,
                                      timeout=timeout)
        return cls(factory, model=model, encoder=encoder, secrets=[key])

    # ------------------------------------------------------------------ interface
    def annotate(self, schema: LabelSchema, samples: Sequence[Sample], config: TeacherConfig,
                 *, on_result, cancel: threading.Event, context: dict) -> None:
        if not samples:
            return
        asyncio.run(self._annotate(schema, list(samples), config, on_result, cancel, context))

    async def _annotate(self, schema, samples, config, on_result, cancel, context):
        client = self.client_factory()
        cache = ReplyCache(context["store"]) if "store" in context else None
        try:
            demos = await self._demonstrations(client, cache, schema, samples, config, context)
            queue: asyncio.Queue = asyncio.Queue()
            for i, sample in enumerate(samples):
                queue.put_nowait((sample, demos[i]))
            workers = [asyncio.create_task(self._worker(client, cache, schema, config, queue,
                                                        on_result, cancel, context))
                       for _ in range(min(config.concurrency, len(samples)))]
            try:
                await asyncio.gather(*workers)
            except _Fatal as exc:
                for w in workers:
                    w.cancel()
                raise TeacherError(redact(str(exc), self.secrets)) from None
        finally:
            await client.close()

    async def _worker(self, client, cache, schema, config, queue, on_result, cancel, context):
        while not queue.empty():
            if cancel.is_set():
                return
            sample, demos = queue.get_nowait()
            started = time.perf_counter()
            result = await self._annotate_one(client, cache, schema, config, sample, demos,
                                              context)
            on_result(sample, result)
            # busy - wait = our own time per sample: prompt, cache, parsing, the SQLite write.
            self.timing["busy_s"] += time.perf_counter() - started
            self.timing["jobs"] += 1

    async def _annotate_one(self, client, cache, schema, config, sample, demos, context):
        strategy = config.strategy
        if strategy == "select":
            base = context["base_candidates"].get(sample.id)
            if not base:
                return SampleResult(None, None, error_kind="no_candidates",
                                    error="no candidate set in the base run")
            if len(base) == 1:
                return SampleResult([base[0]], base[0], confidence=1.0, raw="(single candidate)")
            messages = build_messages(schema, "select", sample.text, demos=demos,
                                      candidates=base)
            reply = await self._complete(client, cache, messages, schema, config,
                                         multi=False, allowed=base, seed=None)
            return self._result(reply, reply.get("labels"), confidence=1.0)
        messages = build_messages(schema, strategy, sample.text, demos=demos)
        multi = is_multi(strategy)
        if strategy != "sc":
            reply = await self._complete(client, cache, messages, schema, config, multi=multi,
                                         allowed=None, seed=None)
            labels = reply.get("labels")
            return self._result(reply, labels,
                                confidence=1.0 / len(labels) if labels else None)
        replies = [await self._complete(client, cache, messages, schema, config, multi=True,
                                        allowed=None, seed=config.seed + k)
                   for k in range(config.samples)]
        votes = Counter(l for r in replies for l in (r.get("labels") or []))
        good = [r for r in replies if r.get("labels")]
        merged = {"content": json.dumps([r.get("content") for r in replies]),
                  "prompt_tokens": sum(r["prompt_tokens"] for r in replies),
                  "completion_tokens": sum(r["completion_tokens"] for r in replies),
                  "latency_ms": sum(r["latency_ms"] for r in replies),
                  "requests": sum(r["requests"] for r in replies),
                  "cached": sum(r["cached"] for r in replies), "key": replies[0].get("key")}
        if not good:
            last = replies[-1]
            merged.update(error_kind=last.get("error_kind"), error=last.get("error"))
            return self._result(merged, None)
        order = sorted(votes, key=lambda l: (-votes[l], schema.names.index(l)))
        top = order[:config.top_k]
        return self._result(merged, top, confidence=votes[top[0]] / len(replies))

    def _result(self, reply: dict, labels, *, confidence=None) -> SampleResult:
        common = dict(raw=reply.get("content"), prompt_tokens=reply.get("prompt_tokens", 0),
                      completion_tokens=reply.get("completion_tokens", 0),
                      latency_ms=reply.get("latency_ms"), cache_key=reply.get("key"),
                      requests=reply.get("requests", 0), cached=reply.get("cached", 0))
        if not labels:
            return SampleResult(None, None, error_kind=reply.get("error_kind") or "unparseable",
                                error=reply.get("error"), **common)
        return SampleResult(list(labels), labels[0], confidence=confidence, **common)

    # --------------------------------------------------------------- one request
    def _params(self, config: TeacherConfig, seed: int | None, sampled: bool) -> dict:
        temperature = max(config.temperature, 0.5) if sampled else config.temperature
        params = {"temperature": temperature, "max_tokens": config.max_tokens}
        if seed is not None:
            params["seed"] = seed
        return params

    async def _complete(self, client, cache, messages, schema, config, *, multi: bool,
                        allowed, seed: int | None) -> dict:
        """One reply as a dict: content, tokens, latency, parsed labels or error fields."""
        params = self._params(config, seed, sampled=seed is not None)
        key = cache_key(self.model, messages, params)
        if cache is not None:
            hit = cache.get(key)
            if hit is not None:
                parsed = parse_reply(hit["content"], schema, multi=multi, allowed=allowed)
                return {**hit, "labels": list(parsed.labels), "key": key, "requests": 0,
                        "cached": 1, "latency_ms": 0.0}
        labels = list(allowed) if allowed is not None else schema.names
        reply = await self._request(client, messages, config, params,
                                    formats=_formats(response_schema(labels, multi=multi)))
        reply["key"] = key
        if reply.get("error_kind") is None:
            parsed = parse_reply(reply["content"], schema, multi=multi, allowed=allowed)
            reply["labels"] = list(parsed.labels)
            if parsed.error_kind:
                reply.update(error_kind=parsed.error_kind,
                             error=f"reply names no valid label: {parsed.detail}"
                             if parsed.error_kind == "no_valid_label" else parsed.detail)
            elif cache is not None:
                cache.put(key, self.model, {k: reply[k] for k in
                                            ("content", "prompt_tokens", "completion_tokens")})
        return reply

    async def _request(self, client, messages, config, params, *, formats: dict) -> dict:
        """Send one request, retrying what a retry can fix; never raises but _Fatal."""
        attempt = 0
        requests = 0
        latency = 0.0
        while True:
            mode = self.structured_mode
            extra = formats[mode]
            started = time.perf_counter()
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                requests += 1
                response = await client.chat.completions.create(
                    model=self.model, messages=messages, timeout=config.timeout,
                    **params, **extra)
                kind = None
            except (openai.BadRequestError, openai.UnprocessableEntityError,
                    openai.InternalServerError) as exc:
                if mode != "none" and not self.structured_confirmed:
                    # The server may reject this response_format: try the next, simpler one.
                    self._downgrade(mode)
                    continue
                if exc.status_code >= 500:
                    kind, detail, wait = "server_error", self._describe(exc), \
                        retry_after_seconds(exc)
                else:
                    kind, detail, wait = "bad_request", self._describe(exc), None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise _Fatal(f"The server refused the API key ({exc.status_code}): check the "
                             f"key for this server.") from None
            except openai.NotFoundError:
                raise _Fatal(f"The server does not know model {self.model!r} (404): check "
                             f"the model name and base URL.") from None
            except openai.RateLimitError as exc:
                kind, detail, wait = "rate_limit", self._describe(exc), retry_after_seconds(exc)
            except openai.APITimeoutError:
                kind, detail, wait = "timeout", f"no reply within {config.timeout:g} s", None
            except openai.APIConnectionError as exc:
                kind, detail, wait = "connection", self._describe(exc), None
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    kind, detail, wait = "client_error", self._describe(exc), None
                else:
                    kind, detail, wait = "server_error", self._describe(exc), \
                        retry_after_seconds(exc)
            except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError) as exc:
                kind, detail, wait = "malformed_response", self._describe(exc), None
            finally:
                self._in_flight -= 1
                elapsed = time.perf_counter() - started
                latency += elapsed
                self.timing["wait_s"] += elapsed
            if kind is None:
                if mode != "none":
                    self.structured_confirmed = True
                return self._read_response(response, requests, latency)
            retryable = kind in ("rate_limit", "timeout", "connection", "server_error",
                                 "malformed_response")
            if not retryable or attempt >= config.max_retries:
                return {"content": None, "prompt_tokens": 0, "completion_tokens": 0,
                        "latency_ms": latency * 1000, "requests": requests, "cached": 0,
                        "error_kind": kind, "error": detail, "labels": None}
            if wait is None:
                wait = config.backoff_base * (2 ** attempt)
                wait += random.uniform(0, wait / 2)
            attempt += 1
            await asyncio.sleep(min(wait, 60.0))

    def _read_response(self, response, requests: int, latency: float) -> dict:
        base = {"latency_ms": latency * 1000, "requests": requests, "cached": 0}
        choices = getattr(response, "choices", None)
        usage = getattr(response, "usage", None)
        tokens = {"prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
                  "completion_tokens": getattr(usage, "completion_tokens", 0) or 0}
        if not choices:
            return {**base, **tokens, "content": None, "error_kind": "empty_choices",
                    "error": "the reply had no choices", "labels": None}
        content = choices[0].message.content
        return {**base, **tokens, "content": content, "error_kind": None, "error": None}

    def _downgrade(self, mode: str) -> None:
        i = STRUCTURED_MODES.index(mode)
        if self.structured_mode == mode:
            self.structured_mode = STRUCTURED_MODES[min(i + 1, len(STRUCTURED_MODES) - 1)]

    def _describe(self, exc: Exception) -> str:
        status = getattr(exc, "status_code", None)
        text = f"{status}: {exc}" if status else f"{type(exc).__name__}: {exc}"
        return redact(text, self.secrets)[:500]

    # ------------------------------------------------------------- demonstrations
    async def _demonstrations(self, client, cache, schema, samples, config, context
                              ) -> list[list[tuple[str, str]]]:
        if config.shots <= 0 or self.encoder is None:
            return [[] for _ in samples]
        pool = None
        if "store" in context:
            pool = human_pool(context["store"], context["project_id"], self.encoder)
        if pool is None:
            pool = await self._generated_pool(client, cache, schema, config)
        context["demo_source"] = pool.source if pool.texts else "none"
        if not pool.texts:
            return [[] for _ in samples]
        embeddings = self.encoder.encode([s.text for s in samples])
        nearest = pool.nearest(embeddings, config.shots + 1)
        return [exclude_self(d, s.text)[-config.shots:] for d, s in zip(nearest, samples)]

    async def _generated_pool(self, client, cache, schema, config) -> DemoPool:
        """The paper's pool: the LLM writes ~``pool_size`` labeled example texts."""
        per_label = max(1, math.ceil(config.pool_size / len(schema.labels)))
        texts, labels = [], []
        gen_config = TeacherConfig(strategy="sa", temperature=max(config.temperature, 0.7),
                                   max_tokens=60 * per_label + 50, timeout=config.timeout,
                                   max_retries=config.max_retries,
                                   backoff_base=config.backoff_base)
        for label in schema.labels:
            messages = [{"role": "system", "content": system_prompt(schema, "sa")},
                        {"role": "user", "content":
                         f"Write {per_label} short, realistic and diverse example texts of the "
                         f"class '{label.name}'. Answer with JSON only: "
                         f'{{"texts": ["...", ...]}}.'}]
            params = self._params(gen_config, None, sampled=False)
            key = cache_key(self.model, messages, params)
            hit = cache.get(key) if cache else None
            reply = hit or await self._request(client, messages, gen_config, params,
                                               formats=_formats(_texts_schema(per_label),
                                                                "texts"))
            found = _texts_from_reply(reply.get("content"))[:per_label]
            if found and cache is not None and hit is None:
                cache.put(key, self.model, {k: reply[k] for k in
                                            ("content", "prompt_tokens", "completion_tokens")})
            texts += found
            labels += [label.name] * len(found)
        embeddings = self.encoder.encode(texts) if texts else None
        return DemoPool(texts, labels, embeddings, "generated")


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
