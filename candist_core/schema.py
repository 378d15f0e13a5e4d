"""Label schemas: validation and the labels.json format of ``shared/datasets``.

Format: ``{"task": "...", "labels": [{"name": "...", "description": "..."}]}``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .records import Label, LabelSchema, SchemaError

MAX_LABELS = 1000
MAX_NAME_CHARS = 200


def build_schema(task: str, labels: Iterable[Label | dict | str]) -> LabelSchema:
    """Validate and normalise labels: names trimmed, unique after case-folding, >= 2."""
    parsed: list[Label] = []
    for position, item in enumerate(labels, start=1):
        if isinstance(item, Label):
            name, description = item.name, item.description
        elif isinstance(item, str):
            name, description = item, ""
        elif isinstance(item, dict):
            if "name" not in item:
                raise SchemaError(f"Label #{position} has no 'name' field.")
            name, description = item["name"], item.get("description") or ""
        else:
            raise SchemaError(f"Label #{position} must be an object with a 'name', "
                              f"got {type(item).__name__}.")
        if not isinstance(name, str) or not isinstance(description, str):
            raise SchemaError(f"Label #{position}: 'name' and 'description' must be text.")
        name = name.strip()
        if not name:
            raise SchemaError(f"Label #{position} has an empty name.")
        if len(name) > MAX_NAME_CHARS:
            raise SchemaError(f"Label #{position} has a name longer than {MAX_NAME_CHARS} "
                              f"characters.")
        parsed.append(Label(name, description.strip()))
    if len(parsed) < 2:
        raise SchemaError(f"A label schema needs at least 2 labels, got {len(parsed)}.")
    if len(parsed) > MAX_LABELS:
        raise SchemaError(f"A label schema may have at most {MAX_LABELS} labels, "
                          f"got {len(parsed)}.")
    seen: dict[str, str] = {}
    for label in parsed:
        key = label.name.casefold()
        if key in seen:
            raise SchemaError(f"Duplicate label name {label.name!r} (same as {seen[key]!r} "
                              f"after trimming and ignoring case).")
        seen[key] = label.name
    return LabelSchema(task=(task or "").strip(), labels=tuple(parsed))


def schema_from_lines(task: str, text: str) -> LabelSchema:
    """Labels typed one per line, each ``name`` or ``name: description`` (the first colon
    splits; blank lines are ignored): a new project needs no labels.json."""
    labels = []
    for line in text.splitlines():
        if line.strip():
            name, _, description = line.partition(":")
            labels.append({"name": name, "description": description})
    return build_schema(task, labels)


def parse_schema(data: Any) -> LabelSchema:
    """Build a schema from the decoded labels.json object."""
    if not isinstance(data, dict):
        raise SchemaError("labels.json must hold an object with 'task' and 'labels'.")
    labels = data.get("labels")
    if not isinstance(labels, list):
        raise SchemaError("labels.json must have a 'labels' list.")
    task = data.get("task") or ""
    if not isinstance(task, str):
        raise SchemaError("labels.json: 'task' must be text.")
    return build_schema(task, labels)


def load_schema(path: str | Path) -> LabelSchema:
    """A labels.json file on disk."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SchemaError(f"Label file not found: {path}") from None
    return read_schema(data, name=f"Label file {path}")


def read_schema(data: bytes, *, name: str = "labels.json") -> LabelSchema:
    """A labels.json as bytes (a file read or uploaded); ``name`` starts the error message."""
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SchemaError(f"{name} is not UTF-8 text.") from None
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno}.") from None
    return parse_schema(decoded)


def schema_to_dict(schema: LabelSchema) -> dict:
    return {"task": schema.task,
            "labels": [{"name": l.name, "description": l.description} for l in schema.labels]}


def save_schema(schema: LabelSchema, path: str | Path) -> None:
    Path(path).write_text(json.dumps(schema_to_dict(schema), indent=2, ensure_ascii=False)
                          + "\n", encoding="utf-8")


def check_replacement(in_use: set[str], new: LabelSchema, *, confirmed: bool) -> None:
    """Refuse to drop or rename labels that annotations or decisions already use, unless
    the user confirmed the migration."""
    lost = sorted(in_use - set(new.names))
    if lost and not confirmed:
        raise SchemaError(f"Refused: {', '.join(repr(l) for l in lost)} "
                          f"{'is' if len(lost) == 1 else 'are'} used by existing annotations, "
                          f"decisions or predictions. Confirm the migration to go on.")


def label_texts(schema: LabelSchema) -> list[str]:
    """How labels are written for the sentence encoder: the offline teacher ranks texts
    against these, and the student's optional cosine head starts from them."""
    return [f"{l.name.replace('_', ' ')}: {l.description}" for l in schema.labels]
