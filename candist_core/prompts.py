"""Prompts and reply parsing for the LLM teacher (pure: no I/O).

The prompt follows the paper's structure: a system prompt with the task and every class
with its meaning, few-shot demonstrations as single-label turns, then the text. Replies
are JSON (``{"label": ...}`` for single answers, ``{"labels": [...]}`` for candidate sets)
when the server honours a response schema, and are parsed from free text otherwise.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Sequence

from .records import LabelSchema

STRATEGIES = ("sa", "ca_add", "ca_all", "sc", "select")
MULTI = {"ca_add", "ca_all", "sc"}

INSTRUCTIONS = {
    "sa": "Classify the text into exactly one of the classes.",
    "ca_add": ("Classify the text into one of the classes. If you are unsure, also include "
               "the other potential classes, most likely first."),
    "ca_all": "Give all the classes the text could possibly belong to, most likely first.",
    "select": "Choose exactly one class for the text from the candidate classes: {candidates}.",
}

FORMATS = {
    False: 'Answer with JSON only: {"label": "<class name>"}.',
    True: 'Answer with JSON only: {"labels": ["<class name>", ...]}.',
}

_NONE_PHRASES = ("none of these", "none of the above", "none of them", "no label",
                 "no class", "not applicable")


@dataclass(frozen=True)
class ParsedReply:
    """Valid labels in the reply's order; ``error_kind`` says why there are none."""

    labels: tuple[str, ...]
    error_kind: str | None = None
    detail: str = ""


def is_multi(strategy: str) -> bool:
    return strategy in MULTI


def system_prompt(schema: LabelSchema, strategy: str, *,
                  candidates: Sequence[str] | None = None) -> str:
    lines = [schema.task or "Classify the text.", "", "The classes are:"]
    for i, label in enumerate(schema.labels, start=1):
        lines.append(f"{i}. {label.name}" + (f": {label.description}" if label.description
                                             else ""))
    instruction = INSTRUCTIONS["ca_add" if strategy == "sc" else strategy]
    if strategy == "select":
        instruction = instruction.format(candidates=", ".join(candidates or []))
    lines += ["", instruction, FORMATS[is_multi(strategy)]]
    return "\n".join(lines)


def answer_json(labels: Sequence[str], *, multi: bool) -> str:
    return json.dumps({"labels": list(labels)} if multi else {"label": labels[0]},
                      ensure_ascii=False)


def build_messages(schema: LabelSchema, strategy: str, text: str, *,
                   demos: Sequence[tuple[str, str]] = (),
                   candidates: Sequence[str] | None = None) -> list[dict]:
    """Chat messages for one text. Demonstrations show single labels, as in the paper."""
    multi = is_multi(strategy)
    messages = [{"role": "system", "content": system_prompt(schema, strategy,
                                                            candidates=candidates)}]
    for demo_text, demo_label in demos:
        messages.append({"role": "user", "content": f"Text: {demo_text}"})
        messages.append({"role": "assistant", "content": answer_json([demo_label], multi=multi)})
    messages.append({"role": "user", "content": f"Text: {text}"})
    return messages


def response_schema(labels: Sequence[str], *, multi: bool) -> dict:
    """JSON schema whose enum is the label names: a server that honours it can only answer
    with valid labels."""
    enum = {"type": "string", "enum": list(labels)}
    if multi:
        return {"type": "object", "properties": {"labels": {
            "type": "array", "items": enum, "minItems": 1, "maxItems": len(labels)}},
            "required": ["labels"], "additionalProperties": False}
    return {"type": "object", "properties": {"label": enum}, "required": ["label"],
            "additionalProperties": False}


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.casefold()).strip(" .,:;!?\"'`*()[]{}")


def label_aliases(schema: LabelSchema) -> dict[str, str]:
    """Normalised spelling -> label: the name, its number in the prompt, and codes written
    in descriptions as 'code XYZ' (TREC's ABBR, ENTY, ...)."""
    aliases: dict[str, str] = {}
    for i, label in enumerate(schema.labels, start=1):
        aliases[_norm(label.name)] = label.name
        for code in re.findall(r"\bcode\s+([A-Z][A-Z0-9_]{1,15})\b", label.description):
            aliases.setdefault(_norm(code), label.name)
    return aliases


def parse_reply(content: str | None, schema: LabelSchema, *, multi: bool,
                allowed: Sequence[str] | None = None) -> ParsedReply:
    """Valid labels named by a reply (JSON first, then free text), in the reply's order.

    ``allowed`` restricts the answer further (the candidate set of a select pass).
    """
    if content is None or not content.strip():
        return ParsedReply((), "unparseable", "empty reply")
    aliases = label_aliases(schema)
    allowed_set = set(allowed) if allowed is not None else set(schema.names)
    found = _from_json(content, aliases, schema)
    if found is None:
        found = _from_text(content, aliases, schema)
    valid = [l for l in dict.fromkeys(found) if l in allowed_set]
    if not valid:
        return ParsedReply((), "no_valid_label", content.strip()[:200])
    return ParsedReply(tuple(valid if multi else valid[:1]))


def _from_json(content: str, aliases: dict[str, str], schema: LabelSchema) -> list[str] | None:
    match = re.search(r"\{.*\}|\[.*\]", content, re.DOTALL)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    values: list = []
    if isinstance(data, list):
        values = data
    elif isinstance(data, dict):
        for key in ("labels", "label", "classes", "class", "answer", "candidates"):
            value = data.get(key)
            if isinstance(value, list):
                values += value
            elif value is not None:
                values.append(value)
    out = []
    for value in values:
        if isinstance(value, str):
            label = _match_one(value, aliases, schema)
            if label:
                out.append(label)
    return out if out or values else None


def _match_one(value: str, aliases: dict[str, str], schema: LabelSchema) -> str | None:
    key = _norm(value)
    if key in aliases:
        return aliases[key]
    if key.isdigit() and 1 <= int(key) <= len(schema.labels):
        return schema.labels[int(key) - 1].name
    found = _from_text(value, aliases, schema)
    return found[0] if len(found) == 1 else None


def _from_text(content: str, aliases: dict[str, str], schema: LabelSchema) -> list[str]:
    text = " " + _norm(content) + " "
    stripped = text.strip()
    if stripped.isdigit() and 1 <= int(stripped) <= len(schema.labels):
        return [schema.labels[int(stripped) - 1].name]
    hits: list[tuple[int, str]] = []
    # Longest spellings first, each match blanked out, so 'card payment fee' is not also
    # read as 'card payment'.
    for alias in sorted(aliases, key=len, reverse=True):
        if not alias:
            continue
        pattern = re.compile(r"(?<![a-z0-9])" + re.escape(alias) + r"(?![a-z0-9])")
        for m in pattern.finditer(text):
            hits.append((m.start(), aliases[alias]))
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
    if not hits and any(p in stripped for p in _NONE_PHRASES):
        return []
    return [label for _, label in sorted(hits)]
