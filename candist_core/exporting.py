"""Export of the cleaned labels: one row per sample, the label chosen by a source policy.

Default policy: a human decision wins, then the latest student prediction, then the
teacher's single label; no minimum confidence, and rows under one are kept unlabeled
(``below="blank"``), so no text is left out unless asked. The last column,
``annotators``, counts the people who labelled the text (0 when none; two on the overlap
of a team review). The same columns in every format: CSV (cells that a spreadsheet would
run as a formula are neutralised), JSONL (one object a line) and Parquet (the candidate set
as a real list column). :func:`check_against_gold` measures the file as configured against
the imported gold labels.
"""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .audit import Estimate, wilson
from .importing import FORMATS, format_from_name
from .records import ExportError, ExportRow

SOURCES = ("human", "student", "teacher")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ["id", "text", "label", "label_source", "confidence", "candidates"]
# After the columns above and ``gold``: how many people labelled the text (team review).
ANNOTATORS = "annotators"


@dataclass(frozen=True)
class ExportOptions:
    """``sources``: label sources in priority order. Rows whose confidence is below
    ``min_confidence`` (human labels never are) are left unlabeled (``below="blank"``)
    or left out (``below="drop"``)."""

    sources: tuple[str, ...] = SOURCES
    min_confidence: float = 0.0
    below: str = "blank"

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


def choose_label(row: ExportRow, options: ExportOptions) -> tuple[str, str, float | None]:
    """(label, source, confidence) for one joined row from ``Store.export_rows``."""
    for source in options.sources:
        if source == "human" and row.human_action == "label":
            return row.human_label, "human", 1.0
        if source == "student" and row.student_label is not None:
            return row.student_label, "student", row.student_confidence
        if source == "teacher" and row.teacher_label is not None:
            return row.teacher_label, "teacher", row.teacher_confidence
    return "", "none", None


def export_dicts(rows: Iterable[ExportRow], options: ExportOptions = ExportOptions(),
                 summary: ExportSummary | None = None, *, with_gold: bool = False
                 ) -> Iterator[dict]:
    """Joined store rows -> typed export rows (``COLUMNS``, plus ``gold`` when asked, then
    ``annotators``): ``label`` '' and ``confidence`` None when no source qualifies,
    ``candidates`` the teacher's set as a list, or None."""
    for row, label, source, confidence in labelled_rows(rows, options, summary):
        record = {"id": row.ext_id, "text": row.text, "label": label, "label_source": source,
                  "confidence": confidence,
                  "candidates": json.loads(row.candidates) if row.candidates else None}
        if with_gold:
            record["gold"] = row.gold or ""
        record[ANNOTATORS] = row.annotators
        yield record


def export_records(rows: Iterable[ExportRow], options: ExportOptions = ExportOptions(),
                   summary: ExportSummary | None = None, *, with_gold: bool = False
                   ) -> Iterator[list[str]]:
    """Turn joined store rows into neutralised CSV records (header first)."""
    yield COLUMNS + (["gold"] if with_gold else []) + [ANNOTATORS]
    for row, label, source, confidence in labelled_rows(rows, options, summary):
        record = [row.ext_id, row.text, label, source,
                  "" if confidence is None else f"{confidence:.4f}", row.candidates or ""]
        if with_gold:
            record.append(row.gold or "")
        yield [neutralise(v) for v in record] + [str(row.annotators)]


def labelled_rows(rows: Iterable[ExportRow], options: ExportOptions,
                  summary: ExportSummary | None = None) -> Iterator[tuple]:
    """(row, label, source, confidence) under the policy and threshold; counted."""
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
        yield row, label, source, None if source == "none" else confidence


@dataclass(frozen=True)
class GoldCheck:
    """The exported labels against the imported gold labels, on the file as configured.

    ``rows``: rows in the file; ``with_gold``: of them with a gold label; ``judged``: of
    those, with a label too (a row left unlabeled under the minimum confidence is not
    judged); ``right``: judged rows whose label equals the gold label; ``human`` /
    ``human_right``: the judged rows labelled by a person, and of them right (a human
    label that differs from the gold label counts as wrong). ``accuracy``: ``right`` of
    ``judged`` with its 95% Wilson interval, None when nothing is judged."""

    rows: int
    with_gold: int
    judged: int
    right: int
    human: int
    human_right: int
    accuracy: Estimate | None


def check_against_gold(rows: Iterable[ExportRow], options: ExportOptions = ExportOptions()
                       ) -> GoldCheck:
    """How many of the labels an export with ``options`` would write agree with the gold
    labels of ``rows`` (joined store rows, as ``Store.export_rows`` yields them): the same
    policy, minimum confidence and left-out rows as the file itself."""
    return gold_check(labelled_rows(rows, options))


def gold_check(labelled: Iterable[tuple]) -> GoldCheck:
    """:class:`GoldCheck` of ``labelled`` rows as :func:`labelled_rows` yields them, so a
    page that counts the export's rows measures them in the same pass."""
    counts = Counter()
    for row, label, source, _ in labelled:
        counts["rows"] += 1
        if not row.gold:
            continue
        counts["with_gold"] += 1
        if not label:
            continue
        right = label == row.gold
        counts["judged"] += 1
        counts["right"] += right
        if source == "human":
            counts["human"] += 1
            counts["human_right"] += right
    return GoldCheck(**{k: counts[k] for k in ("rows", "with_gold", "judged", "right",
                                               "human", "human_right")},
                     accuracy=wilson(counts["right"], counts["judged"]))


def export_gold_check(store, project_id: int, *, options: ExportOptions = ExportOptions()
                      ) -> GoldCheck | None:
    """:func:`check_against_gold` over the project's export (texts not read); None when
    the project has no gold labels, so there is nothing to measure against."""
    if not store.has_gold(project_id):
        return None
    return check_against_gold(store.export_rows(project_id, texts=False), options)


def export_csv_text(store, project_id: int, *, options: ExportOptions = ExportOptions(),
                    summary: ExportSummary | None = None, limit: int | None = None) -> str:
    """The cleaned CSV as text (a browser download; ``limit`` rows for a preview)."""
    buffer = io.StringIO()
    _write_csv(buffer, store, project_id, options, summary, limit)
    return buffer.getvalue()


def export_preview(store, project_id: int, *, options: ExportOptions = ExportOptions(),
                   limit: int = 20) -> list[dict]:
    """The first ``limit`` rows of the file, typed (as JSONL and Parquet hold them). When
    rows below the minimum confidence are left out, more texts are read, four times as
    many each time, until ``limit`` rows are found or the texts run out: a render reads 20
    texts, not all of them (0.5 s at 100,000, bench/RESULTS.md), unless nearly every text
    is left out."""
    read, texts = limit, None
    while True:
        rows = list(_joined(store, project_id, options, None, read, typed=True))
        if len(rows) >= limit:
            return rows[:limit]
        texts = store.count_samples(project_id) if texts is None else texts
        if read >= texts:
            return rows
        read *= 4


def export_bytes(store, project_id: int, *, fmt: str = "csv",
                 options: ExportOptions = ExportOptions()) -> bytes:
    """The whole export in ``fmt`` (csv, jsonl or parquet), for a browser download."""
    buffer = io.BytesIO()
    _WRITERS[_check_format(fmt)](buffer, store, project_id, options, None)
    return buffer.getvalue()


def export_summary(store, project_id: int, *, options: ExportOptions = ExportOptions()
                   ) -> ExportSummary:
    """How many rows an export would have, by label source, without building the file."""
    summary = ExportSummary()
    for _ in labelled_rows(store.export_rows(project_id, texts=False), options, summary):
        pass
    return summary


def export_format(path: str | Path, explicit: str | None = None) -> str:
    """``explicit``, else what the file name says (as for import)."""
    return _check_format(explicit) if explicit else format_from_name(path)


def write_export(store, project_id: int, path: str | Path, *,
                 options: ExportOptions = ExportOptions(), fmt: str | None = None,
                 allowed_dir: str | Path | None = None) -> ExportSummary:
    """Write the export to ``path`` in ``fmt`` (default: from the file name), atomically:
    a temp file renamed into place, so a failed export never leaves half a file."""
    path = Path(path)
    fmt = export_format(path, fmt)
    if allowed_dir is not None:
        root = Path(allowed_dir).resolve()
        if not path.resolve().is_relative_to(root):
            raise ExportError(f"Export path {path} is outside the export folder {root}.")
    if path.exists() and path.is_dir():
        raise ExportError(f"Export path {path} is a folder; give a file name ending in .csv.")
    if not path.parent.is_dir():
        raise ExportError(f"Folder {path.parent} does not exist.")
    summary = ExportSummary()
    write_atomically(path, lambda handle: _WRITERS[fmt](handle, store, project_id, options,
                                                        summary), error=ExportError)
    return summary


def write_atomically(path: Path, write, *, error: type[Exception]) -> None:
    """``write(handle)`` into ``path.part``, then rename it into place: a failed write never
    leaves half a file. An OSError becomes one ``error`` line."""
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise error(f"Cannot write {path}: {exc.strerror or exc}.") from None


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}: use csv, jsonl or parquet.")
    return fmt


def _joined(store, project_id, options, summary, limit=None, typed=False):
    rows = store.export_rows(project_id, limit=limit)
    make = export_dicts if typed else export_records
    return make(rows, options, summary, with_gold=store.has_gold(project_id))


def _write_csv(handle, store, project_id, options, summary, limit=None) -> None:
    text = handle if isinstance(handle, io.TextIOBase) else \
        io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=True)
    csv.writer(text, lineterminator="\n").writerows(
        _joined(store, project_id, options, summary, limit))
    if text is not handle:
        text.detach()


def _write_jsonl(handle, store, project_id, options, summary) -> None:
    for record in _joined(store, project_id, options, summary, typed=True):
        handle.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")


def _write_parquet(handle, store, project_id, options, summary) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    records = list(_joined(store, project_id, options, summary, typed=True))
    fields = [("id", pa.string()), ("text", pa.string()), ("label", pa.string()),
              ("label_source", pa.string()), ("confidence", pa.float64()),
              ("candidates", pa.list_(pa.string()))]
    if store.has_gold(project_id):
        fields.append(("gold", pa.string()))
    fields.append((ANNOTATORS, pa.int64()))
    schema = pa.schema(fields)
    table = pa.Table.from_pylist(records, schema=schema) if records else schema.empty_table()
    pq.write_table(table, handle)


_WRITERS = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}
