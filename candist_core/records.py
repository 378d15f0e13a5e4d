"""Plain dataclasses passed between modules, and the named errors the core raises.

Errors carry a message a user can act on; the CLI and the pages print ``str(error)``
and never parse it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class CandistError(Exception):
    """Base class of every error the core raises on purpose."""


class SchemaError(CandistError):
    """A label schema is invalid (too few labels, duplicates, empty names, bad JSON)."""


class CsvImportError(CandistError):
    """An import file (CSV, JSONL or Parquet) cannot be read as a table of texts."""


class ProjectError(CandistError):
    """A project is missing, already exists, or its name is not allowed."""


class ExportError(CandistError):
    """An export cannot be written (bad path, nothing to export)."""


class TeacherError(CandistError):
    """The teacher cannot run (no server, bad configuration)."""


class StudentError(CandistError):
    """The student cannot be trained (no annotations, bad configuration)."""


@dataclass(frozen=True)
class Label:
    name: str
    description: str = ""


@dataclass(frozen=True)
class LabelSchema:
    """The task description and the ordered labels of a project."""

    task: str
    labels: tuple[Label, ...]

    @property
    def names(self) -> list[str]:
        return [label.name for label in self.labels]


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    task: str
    created: str


@dataclass(frozen=True)
class Sample:
    id: int
    ext_id: str
    text: str
    gold: str | None = None


@dataclass
class ImportReport:
    """What an import did, row numbers are 1-based data rows (the header is row 0)."""

    rows: int = 0
    imported: int = 0
    already_present: int = 0
    empty_texts: list[int] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    unknown_gold: dict[str, int] = field(default_factory=dict)
    overlong: list[int] = field(default_factory=list)
    nul_bytes_removed: int = 0
    encoding: str = "utf-8"
    bad_lines: list[int] = field(default_factory=list)       # CSV lines left out (1: header)
    repeated_texts: list[int] = field(default_factory=list)  # rows repeating an earlier text

    def summary_line(self) -> str:
        return (f"Imported {self.imported} of {self.rows} rows "
                f"({self.already_present} already present).")

    def messages(self) -> list[str]:
        """Human-readable lines describing every problem found (empty when none)."""
        out = []
        if self.empty_texts:
            out.append(f"{len(self.empty_texts)} row(s) with an empty text were skipped "
                       f"(rows {_preview(self.empty_texts)}).")
        if self.duplicate_ids:
            out.append(f"{len(self.duplicate_ids)} row(s) repeat an id seen earlier in the "
                       f"file and were skipped (ids {_preview(self.duplicate_ids)}).")
        if self.unknown_gold:
            names = ", ".join(f"{k!r} x{v}" for k, v in sorted(self.unknown_gold.items())[:10])
            out.append(f"{sum(self.unknown_gold.values())} gold label(s) are not in the label "
                       f"schema and were dropped: {names}.")
        if self.overlong:
            out.append(f"{len(self.overlong)} text(s) are longer than the limit and will be "
                       f"truncated by the student (rows {_preview(self.overlong)}).")
        if self.nul_bytes_removed:
            out.append(f"{self.nul_bytes_removed} NUL byte(s) were removed from the file.")
        if self.bad_lines:
            out.append(f"{len(self.bad_lines)} malformed line(s) were left out (file lines "
                       f"{_preview(self.bad_lines)}: the wrong number of fields). Mend them "
                       f"and import the file again: rows already imported are not added "
                       f"twice.")
        if self.repeated_texts:
            out.append(f"{len(self.repeated_texts)} row(s) repeat a text seen earlier in the "
                       f"file; each copy is kept as a sample of its own (rows "
                       f"{_preview(self.repeated_texts)}).")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "imported": self.imported,
            "already_present": self.already_present, "empty_texts": len(self.empty_texts),
            "duplicate_ids": len(self.duplicate_ids),
            "unknown_gold": sum(self.unknown_gold.values()), "overlong": len(self.overlong),
            "nul_bytes_removed": self.nul_bytes_removed, "encoding": self.encoding,
            "bad_lines": len(self.bad_lines), "repeated_texts": len(self.repeated_texts),
        }


def _preview(items: list, limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (", ..." if len(items) > limit else "")


# ------------------------------------------------------------------ stored rows
# Frozen records the store returns. Each decodes its own JSON / BLOB columns in
# ``from_row``, so no caller parses a column.

def _json(value: str | None, default: Any = None) -> Any:
    return json.loads(value) if value else default


@dataclass(frozen=True)
class TeacherRun:
    """One annotation run: a teacher, a model and the settings that change answers.

    ``use_order`` rises each time the run is started or resumed: the run with the highest
    one (and annotations) is the project's current teacher run.
    """

    id: int
    project_id: int
    teacher: str
    model: str
    strategy: str
    params: dict
    status: str
    created: str
    use_order: int
    finished: str | None = None
    summary: dict | None = None

    @classmethod
    def from_row(cls, row: dict) -> "TeacherRun":
        return cls(row["id"], row["project_id"], row["teacher"], row["model"], row["strategy"],
                   _json(row["params"], {}), row["status"], row["created"], row["use_order"],
                   row["finished"], _json(row["summary"]))


@dataclass(frozen=True)
class Annotation:
    """One sample's result in a teacher run: a candidate set, or an error kind.

    ``ext_id``, ``text`` and ``gold`` are filled when the read joined the sample.
    """

    sample_id: int
    candidates: list[str] | None
    label: str | None
    confidence: float | None = None
    raw: str | None = None
    error_kind: str | None = None
    error: str | None = None
    run_id: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float | None = None
    cache_key: str | None = None
    created: str | None = None
    ext_id: str | None = None
    text: str | None = None
    gold: str | None = None

    @classmethod
    def from_row(cls, row: dict) -> "Annotation":
        fields = {k: row[k] for k in _ANNOTATION_FIELDS if k in row}
        fields["candidates"] = _json(row.get("candidates"))
        return cls(**fields)


_ANNOTATION_FIELDS = tuple(Annotation.__dataclass_fields__)


@dataclass(frozen=True)
class Decision:
    """A human decision: ``label`` (with the label), ``skip``, or ``undo`` of an earlier one.
    ``in_candidates``: whether the label was one of the teacher's candidates; ``audit``:
    made blind on a text of the random audit sample (the estimates use only these)."""

    id: int
    sample_id: int
    action: str
    label: str | None = None
    in_candidates: bool | None = None
    undoes: int | None = None
    who: str = ""
    note: str = ""
    created: str = ""
    audit: bool = False
    resolution: bool = False   # an owner's resolution of a conflict (not a rating)

    @classmethod
    def from_row(cls, row: dict) -> "Decision":
        flag = row.get("in_candidates")
        return cls(row["id"], row["sample_id"], row["action"], row.get("label"),
                   None if flag is None else bool(flag), row.get("undoes"),
                   row.get("who") or "", row.get("note") or "", row.get("created") or "",
                   bool(row.get("audit") or 0), bool(row.get("resolution") or 0))


@dataclass(frozen=True)
class StudentRun:
    """One distillation: its settings, per-epoch metrics, and where its checkpoint is."""

    id: int
    project_id: int
    teacher_run_id: int | None
    method: str
    config: dict
    status: str
    created: str
    epochs: list[dict]
    finished: str | None = None
    best_epoch: int | None = None
    checkpoint: str | None = None
    error: str | None = None
    worker: str | None = None

    @classmethod
    def from_row(cls, row: dict) -> "StudentRun":
        return cls(row["id"], row["project_id"], row["teacher_run_id"], row["method"],
                   _json(row["config"], {}), row["status"], row["created"],
                   _json(row["epochs"], []), row["finished"], row["best_epoch"],
                   row["checkpoint"], row["error"], row["worker"])


PROBS_DTYPE = np.float32


def pack_probs(probs: np.ndarray) -> bytes:
    """A probability row as stored in ``predictions.probs`` (float32, label order)."""
    return np.asarray(probs, dtype=PROBS_DTYPE).tobytes()


def unpack_probs(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=PROBS_DTYPE)


@dataclass(frozen=True)
class Prediction:
    """The student's probabilities for one sample (label order of the project)."""

    run_id: int
    sample_id: int
    probs: np.ndarray
    label: str
    confidence: float
    entropy: float = 0.0
    out_of_candidate: bool = False
    high_confidence: bool = False
    small_loss: bool = False
    label_issue: float | None = None   # cleanlab's label quality of the teacher's label
    oos_confidence: float | None = None  # out-of-sample probability of the student's label

    @classmethod
    def from_row(cls, row: dict) -> "Prediction":
        return cls(row["run_id"], row["sample_id"], unpack_probs(row["probs"]), row["label"],
                   row["confidence"], row["entropy"], bool(row["out_of_candidate"]),
                   bool(row["high_confidence"]), bool(row["small_loss"]),
                   row.get("label_issue"), row.get("oos_confidence"))


@dataclass(frozen=True, slots=True)
class ExportRow:
    """A sample joined with its current human decision, latest student prediction and
    latest teacher annotation: what the export's label policy chooses from."""

    sample_id: int
    ext_id: str
    text: str
    gold: str | None
    human_action: str | None
    human_label: str | None
    student_label: str | None
    student_confidence: float | None
    teacher_label: str | None
    teacher_confidence: float | None
    candidates: str | None   # the teacher's set as stored (a JSON list), written as is
    annotators: int = 0      # people with a current (non-resolution) label on the text


@dataclass(frozen=True)
class Member:
    """Someone allowed in: ``role`` 'owner' or 'reviewer' of a project, or an owner of the
    whole database (``project_id`` None). ``email`` is stored lowercased."""

    email: str
    role: str
    project_id: int | None
    added_by: str = ""
    created: str = ""

    @classmethod
    def from_row(cls, row: dict) -> "Member":
        return cls(row["email"], row["role"], row["project_id"], row.get("added_by") or "",
                   row.get("created") or "")


@dataclass(frozen=True)
class Lease:
    """A reviewer's hold on the text they have open; ``expires`` in unix seconds."""

    project_id: int
    sample_id: int
    who: str
    expires: float
    created: str = ""
