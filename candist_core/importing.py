"""Import: read a CSV, JSONL or Parquet file into rows of (stable id, text, gold), report
what was wrong.

Reading (I/O) and planning (pure: which rows to keep, what to report) are separate so the
pages can preview a file before anything is written. Every format becomes the same table of
string columns, so planning is one code path.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .records import CsvImportError, ImportReport, LabelSchema

MAX_FILE_BYTES = 2 * 1024 ** 3
FORMATS = ("csv", "jsonl", "parquet")
_KIND = {"csv": "CSV", "jsonl": "JSONL", "parquet": "Parquet"}
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def format_from_name(name: str | Path | None) -> str:
    """The format a file name says: .jsonl / .ndjson, .parquet / .pq, anything else CSV.
    Import and export both read names this way."""
    return _SUFFIXES.get(Path(str(name or "")).suffix.lower(), "csv")


def file_format(name: str | Path | None, explicit: str | None = None) -> str:
    """``explicit`` when given, else :func:`format_from_name`."""
    if explicit:
        if explicit not in FORMATS:
            raise CsvImportError(f"Unknown format {explicit!r}: use csv, jsonl or parquet.")
        return explicit
    return format_from_name(name)


@dataclass(frozen=True)
class ImportOptions:
    """Which columns hold what; ``encoding=None`` accepts UTF-8 with or without BOM."""

    text_col: str | None = "text"   # None: read any columns (previews)
    gold_col: str | None = None
    id_col: str | None = None
    encoding: str | None = None
    delimiter: str = ","
    max_chars: int = 10_000
    format: str | None = None       # csv | jsonl | parquet; None: from the file name
    # CSV: leave out lines with the wrong number of fields (each one reported by its line
    # number) instead of refusing the whole file.
    skip_bad_lines: bool = False
    # Gold values of the file -> label names of the schema ("pos" -> "positive"), for a
    # file whose gold column spells the labels its own way.
    gold_map: tuple[tuple[str, str], ...] = ()


@dataclass
class ImportPlan:
    rows: list[tuple[str, str, str | None]]
    report: ImportReport


def read_table(source: str | Path | bytes, *, options: ImportOptions = ImportOptions(),
               name: str | None = None) -> tuple[pd.DataFrame, ImportReport]:
    """Decode and parse a file (a path or the bytes of an upload) into string columns."""
    label = name or (str(source) if not isinstance(source, bytes) else "the upload")
    fmt = file_format(name if isinstance(source, bytes) else (name or source), options.format)
    kind = _KIND[fmt]
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise CsvImportError(f"{kind} file not found: {path}")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CsvImportError(f"{kind} file {label} is larger than 2 GiB; split it first.")
        data = path.read_bytes()
    if not data.strip():
        raise CsvImportError(f"{kind} file {label} is empty.")
    report = ImportReport()
    if fmt == "parquet":
        frame = _read_parquet(data, label, options)
    else:
        text, report.encoding = _decode(data, options.encoding, label, kind)
        if "\x00" in text:
            report.nul_bytes_removed = text.count("\x00")
            text = text.replace("\x00", "")
        frame = _read_jsonl(text, label, options) if fmt == "jsonl" else \
            _read_csv(text, label, options, report)
    frame.columns = [str(c).strip() for c in frame.columns]
    _check_columns(frame, options, label)
    if frame.empty:
        raise CsvImportError(f"{kind} file {label} has no data rows." if fmt != "csv" else
                             f"CSV file {label} has a header but no data rows.")
    return frame, report


def _read_csv(text: str, label: str, options: ImportOptions,
              report: ImportReport | None = None) -> pd.DataFrame:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                                na_filter=False, sep=options.delimiter, quotechar='"',
                                skip_blank_lines=True,
                                on_bad_lines="warn" if options.skip_bad_lines else "error")
    except pd.errors.EmptyDataError:
        raise CsvImportError(f"CSV file {label} is empty.") from None
    except pd.errors.ParserError as exc:
        detail = _parser_detail(exc)
        skip = (" or leave the malformed lines out ('Skip malformed lines' on the Data "
                "page, --skip-bad-lines on the command line)" if detail.startswith("Expected")
                else "")
        raise CsvImportError(f"CSV file {label} is malformed: {detail}. Check the quoting "
                             f"and the delimiter{skip}.") from None
    except csv.Error as exc:
        raise CsvImportError(f"CSV file {label} is malformed: {exc}.") from None
    if report is not None:
        report.bad_lines = [int(n) for w in caught
                            for n in re.findall(r"Skipping line (\d+)", str(w.message))]
    return frame


def _read_jsonl(text: str, label: str, options: ImportOptions) -> pd.DataFrame:
    """One JSON object per line (blank lines skipped); every value becomes a string."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CsvImportError(f"JSONL file {label} line {number} is not valid JSON: "
                                 f"{exc.msg} at column {exc.colno}.") from None
        if not isinstance(record, dict):
            raise CsvImportError(f"JSONL file {label} line {number} is not a JSON object "
                                 f"(it is {_json_type(record)}).")
        if options.text_col is not None:
            if options.text_col not in record:
                raise CsvImportError(f"JSONL file {label} line {number} has no "
                                     f"{options.text_col!r} field.")
            value = record[options.text_col]
            if value is not None and not isinstance(value, str):
                raise CsvImportError(f"JSONL file {label} line {number}: "
                                     f"{options.text_col!r} is {_json_type(value)}, not text.")
        records.append({k: _as_text(v) for k, v in record.items()})
    return pd.DataFrame.from_records(records).fillna("") if records else pd.DataFrame()


def _read_parquet(data: bytes, label: str, options: ImportOptions) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError):
        raise CsvImportError(f"Parquet file {label} cannot be read: it is not a Parquet "
                             f"file, or it is damaged.") from None
    if options.text_col is not None and options.text_col in table.column_names:
        kind = table.schema.field(options.text_col).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_null(kind)):
            raise CsvImportError(f"The text column {options.text_col!r} of {label} holds "
                                 f"{kind}, not text.")
    # pandas writes its index as a column named __index_level_0__: not the user's data
    index = {c for c in (table.schema.pandas_metadata or {}).get("index_columns", [])
             if isinstance(c, str)}   # a RangeIndex is stored as a dict, not a column
    return pd.DataFrame({name: [_as_text(v) for v in table.column(name).to_pylist()]
                         for name in table.column_names if name not in index})


def _as_text(value) -> str:
    """A JSON or Parquet value as the string a CSV cell would hold ('' for null)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false",
            int: "a number", float: "a number"}.get(type(value), "null")


def plan_import(frame: pd.DataFrame, schema: LabelSchema, *, options: ImportOptions,
                existing_ids: set[str], report: ImportReport | None = None) -> ImportPlan:
    """Choose the rows to insert and record every problem; writes nothing."""
    report = report or ImportReport()
    texts = frame[options.text_col].tolist()
    golds = frame[options.gold_col].tolist() if options.gold_col else [None] * len(texts)
    ids = (frame[options.id_col].str.strip().tolist() if options.id_col
           else _content_ids(texts))
    names = set(schema.names)
    canonical = {n.casefold(): n for n in schema.names}
    mapped = dict(options.gold_map)
    wrong = sorted(v for v in mapped.values() if v not in names)
    if wrong:
        raise CsvImportError(f"The gold-label mapping names labels that are not in the "
                             f"project: {', '.join(map(repr, wrong))}.")
    unknown: Counter = Counter()
    seen: set[str] = set()
    first_row: dict[str, int] = {}
    rows = []
    report.rows = len(texts)
    for row_no, (ext_id, text, gold) in enumerate(zip(ids, texts, golds), start=1):
        if not text.strip():
            report.empty_texts.append(row_no)
            continue
        if not ext_id:
            ext_id = _content_ids([text])[0]
        if ext_id in seen:
            report.duplicate_ids.append(ext_id)
            continue
        seen.add(ext_id)
        if ext_id in existing_ids:
            report.already_present += 1
            continue
        if len(text) > options.max_chars:
            report.overlong.append(row_no)
        if text in first_row:   # kept (a text may really occur twice), but said
            report.repeated_texts.append(row_no)
        else:
            first_row[text] = row_no
        if gold is not None:
            gold = gold.strip()
            if not gold:
                gold = None
            elif gold in mapped:
                gold = mapped[gold]
            elif gold not in names:
                match = canonical.get(gold.casefold())
                if match is None:
                    unknown[gold] += 1
                gold = match
        rows.append((ext_id, text, gold))
    report.unknown_gold = dict(unknown)
    return ImportPlan(rows, report)


def import_csv(store, project_id: int, source: str | Path | bytes, *,
               options: ImportOptions = ImportOptions(), name: str | None = None
               ) -> ImportReport:
    """Read, plan and insert in one transaction; re-importing the same file adds nothing."""
    frame, report = read_table(source, options=options, name=name)
    plan = plan_import(frame, store.label_schema(project_id), options=options,
                       existing_ids=store.existing_ext_ids(project_id), report=report)
    plan.report.imported = store.insert_samples(project_id, plan.rows)
    return plan.report


def _content_ids(texts: list[str]) -> list[str]:
    """Stable ids from content: the k-th copy of a text gets suffix ``-k``, so re-importing
    the same file (or a reordered one) maps every row to the same sample."""
    copies: Counter = Counter()
    out = []
    for text in texts:
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
        k = copies[digest]
        copies[digest] += 1
        out.append(digest if k == 0 else f"{digest}-{k}")
    return out


def _decode(data: bytes, encoding: str | None, label: str, kind: str = "CSV"
            ) -> tuple[str, str]:
    if encoding:
        try:
            return data.decode(encoding), encoding
        except LookupError:
            raise CsvImportError(f"Unknown encoding {encoding!r}.") from None
        except UnicodeDecodeError as exc:
            raise CsvImportError(f"{kind} file {label} cannot be decoded as {encoding}: invalid "
                                 f"byte 0x{data[exc.start]:02x} at offset {exc.start}.") from None
    if data.startswith(b"\xef\xbb\xbf"):
        encoding_used, data = "utf-8-sig", data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
        encoding_used = "utf-8"
    else:
        encoding_used = "utf-8"
    try:
        return data.decode("utf-8"), encoding_used
    except UnicodeDecodeError as exc:
        raise CsvImportError(
            f"{kind} file {label} is not UTF-8: invalid byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}. Save it as UTF-8, or name its encoding (for example --encoding "
            f"cp1252 or --encoding latin-1).") from None


def _check_columns(frame: pd.DataFrame, options: ImportOptions, label: str) -> None:
    columns = list(frame.columns)
    for role, col in (("text", options.text_col), ("gold-label", options.gold_col),
                      ("id", options.id_col)):
        if col is None or col in columns:
            continue
        found = ", ".join(repr(c) for c in columns[:20])
        hint = ""
        if len(columns) == 1:
            for sep, sep_name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
                if sep in columns[0]:
                    hint = (f" The header looks separated by {sep_name}, not by "
                            f"{options.delimiter!r}: choose that delimiter.")
                    break
        raise CsvImportError(f"The {role} column {col!r} is not in {label}. Columns found: "
                             f"{found}.{hint}")


def _parser_detail(exc: Exception) -> str:
    msg = str(exc).strip().split("C error:")[-1].strip()
    return msg.splitlines()[0].rstrip(".") if msg else "unreadable"
