"""Export of the cleaned CSV: one row per sample, the label chosen by a source policy.

Default policy: a human decision wins, then the latest student prediction, then the
teacher's single label. Cells that a spreadsheet would run as a formula are neutralised.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .records import ExportError

SOURCES = ("human", "student", "teacher")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ["id", "text", "label", "label_source", "confidence", "candidates"]


@dataclass(frozen=True)
class ExportOptions:
    """``sources``: label sources in priority order. Rows whose confidence is below
    ``min_confidence`` (human labels never are) are left unlabeled (``below="blank"``)
    or left out (``below="drop"``)."""

    sources: tuple[str, ...] = SOURCES
    min_confidence: float = 0.0
    below: str = "blank"
    include_gold: bool = True

    def __post_init__(self):
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources:
            raise ExportError(f"Label sources must be among {', '.join(SOURCES)}; "
                              f"got {', '.join(self.sources) or 'none'}.")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ExportError(f"--min-confidence must be between 0 and 1, "
                              f"got {self.min_confidence}.")
        if self.below not in ("blank", "drop"):
            raise ExportError(f"Below-threshold rows are 'blank' or 'drop', got {self.below!r}.")


@dataclass
class ExportSummary:
    rows: int = 0
    sources: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"rows": self.rows, **{f"from_{k}": v for k, v in self.sources.items()}}


def neutralise(value: str) -> str:
    """Prefix a quote to cells a spreadsheet would evaluate (formula injection)."""
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def choose_label(row: dict, options: ExportOptions) -> tuple[str, str, float | None]:
    """(label, source, confidence) for one joined row from ``Store.export_rows``."""
    for source in options.sources:
        if source == "human" and row["human_action"] == "label":
            return row["human_label"], "human", 1.0
        if source == "student" and row["student_label"] is not None:
            return row["student_label"], "student", row["student_confidence"]
        if source == "teacher" and row["teacher_label"] is not None:
            return row["teacher_label"], "teacher", row["teacher_confidence"]
    return "", "none", None


def export_records(rows: Iterable[dict], options: ExportOptions = ExportOptions(),
                   summary: ExportSummary | None = None, *, with_gold: bool = False
                   ) -> Iterator[list[str]]:
    """Turn joined store rows into neutralised CSV records (header first)."""
    with_gold = with_gold and options.include_gold
    yield COLUMNS + (["gold"] if with_gold else [])
    for row in rows:
        label, source, confidence = choose_label(row, options)
        if source != "human" and options.min_confidence > 0 and (
                confidence is None or confidence < options.min_confidence):
            if options.below == "drop":
                continue
            label, source = "", "none"
        if summary is not None:
            summary.rows += 1
            summary.sources[source] += 1
        candidates = row["candidates"]
        record = [row["ext_id"], row["text"], label, source,
                  "" if confidence is None or source == "none" else f"{confidence:.4f}",
                  candidates if candidates else ""]
        if with_gold:
            record.append(row["gold"] or "")
        yield [neutralise(v) for v in record]


def export_csv_text(store, project_id: int, *, options: ExportOptions = ExportOptions(),
                    summary: ExportSummary | None = None, limit: int | None = None) -> str:
    """The cleaned CSV as text (a browser download; ``limit`` rows for a preview)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        _records(store, project_id, options, summary, limit))
    return buffer.getvalue()


def export_summary(store, project_id: int, *, options: ExportOptions = ExportOptions()
                   ) -> ExportSummary:
    """How many rows an export would have, by label source, without building the file."""
    summary = ExportSummary()
    for _ in export_records(store.export_rows(project_id), options, summary):
        pass
    return summary


def _records(store, project_id, options, summary, limit=None):
    return export_records(store.export_rows(project_id, limit=limit), options, summary,
                          with_gold=store.has_gold(project_id))


def write_export(store, project_id: int, path: str | Path, *,
                 options: ExportOptions = ExportOptions(),
                 allowed_dir: str | Path | None = None) -> ExportSummary:
    """Write the cleaned CSV to ``path`` (atomically: a temp file renamed into place)."""
    path = Path(path)
    if allowed_dir is not None:
        root = Path(allowed_dir).resolve()
        if not path.resolve().is_relative_to(root):
            raise ExportError(f"Export path {path} is outside the export folder {root}.")
    if path.exists() and path.is_dir():
        raise ExportError(f"Export path {path} is a folder; give a file name ending in .csv.")
    if not path.parent.is_dir():
        raise ExportError(f"Folder {path.parent} does not exist.")
    summary = ExportSummary()
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(
                _records(store, project_id, options, summary))
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    return summary
