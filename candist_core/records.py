"""Plain dataclasses passed between modules, and the named errors the core raises.

Errors carry a message a user can act on; the CLI and the pages print ``str(error)``
and never parse it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class CandistError(Exception):
    """Base class of every error the core raises on purpose."""


class SchemaError(CandistError):
    """A label schema is invalid (too few labels, duplicates, empty names, bad JSON)."""


class CsvImportError(CandistError):
    """A CSV file cannot be read as a table of texts."""


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
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "imported": self.imported,
            "already_present": self.already_present, "empty_texts": len(self.empty_texts),
            "duplicate_ids": len(self.duplicate_ids),
            "unknown_gold": sum(self.unknown_gold.values()), "overlong": len(self.overlong),
            "nul_bytes_removed": self.nul_bytes_removed, "encoding": self.encoding,
        }


def _preview(items: list, limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (", ..." if len(items) > limit else "")
