"""Label new files with a trained student: ``predict`` in the CLI and the app's Predict page.

The input is read like an import (CSV, JSONL or Parquet; the same clear errors); the output
keeps every input column and adds ``label``, ``confidence`` (the top probability) and the
``top_k`` labels with their probabilities. The output is written to a temporary name and
renamed into place: a failed run never leaves half a file.
"""
from __future__ import annotations

import contextlib
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .exporting import neutralise, write_atomically
from .importing import FORMATS, ImportOptions, file_format, read_table
from .model_dir import check_model_dir, load_model_dir
from .records import CsvImportError, StudentError

OUTPUT_COLUMNS = ("label", "confidence", "top_labels", "top_probs")


@dataclass(frozen=True)
class PredictOptions:
    text_col: str = "text"
    batch_size: int = 64
    device: str = "auto"
    top_k: int = 3
    in_format: str | None = None     # None: from the input's name
    out_format: str | None = None    # None: from the output's name

    def __post_init__(self):
        if self.batch_size < 1:
            raise StudentError(f"--batch-size must be at least 1, got {self.batch_size}.")
        if self.top_k < 1:
            raise StudentError(f"--top-k must be at least 1, got {self.top_k}.")


@dataclass
class PredictSummary:
    rows: int = 0
    empty_texts: int = 0
    renamed: dict[str, str] = field(default_factory=dict)   # input column -> new name
    labels: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    device: str = ""

    def to_dict(self) -> dict:
        return {"rows": self.rows, "empty_texts": self.empty_texts, "renamed": self.renamed,
                "labels": dict(self.labels), "seconds": round(self.seconds, 3),
                "texts_per_s": round(self.rows / self.seconds, 1) if self.seconds else None,
                "device": self.device}


class Predictor:
    """A loaded student: texts in, probabilities (label order of ``labels``) out."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.device = next(model.parameters()).device
        config = model.config
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        self.max_tokens = config.max_tokens or tokenizer.model_max_length

    @classmethod
    def from_dir(cls, path: str | Path, *, device: str = "auto") -> Predictor:
        return cls(*load_model_dir(path, device=device))

    def probabilities(self, texts: list[str], *, batch_size: int = 64,
                      on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """(len(texts), len(labels)) softmax outputs. Texts are cut to the length the
        student was trained at; batches are formed by length, so padding stays small."""
        return self._batched(texts, lambda ids, mask: torch.softmax(
            self.model(input_ids=ids, attention_mask=mask).logits.float(), -1),
            width=len(self.labels), batch_size=batch_size, on_progress=on_progress)

    def embeddings(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """(len(texts), hidden) pooled embeddings, the head's input: what a head update
        (:mod:`learning`) scores new texts with."""
        return self._batched(texts, lambda ids, mask: self.model.pooled(ids, mask).float(),
                             width=self.model.head.in_features, batch_size=batch_size)

    @torch.inference_mode()
    def _batched(self, texts: list[str], fn, *, width: int, batch_size: int,
                 on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_tokens)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), width), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            enc = self.tokenizer.pad({"input_ids": [ids[i] for i in rows]},
                                     return_tensors="pt")
            with self._autocast():
                out[rows] = fn(enc["input_ids"].to(self.device),
                               enc["attention_mask"].to(self.device)).cpu().numpy()
            if on_progress:
                on_progress(min(start + batch_size, len(order)), len(order))
        return out

    def _autocast(self):
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()


def student_model_path(store, project_id: int, run_id: int | None = None) -> Path:
    """The model folder of ``run_id``, or of the project's latest student run that saved
    one."""
    runs = store.student_runs(project_id)
    if run_id is not None:
        run = next((r for r in runs if r.id == run_id), None)
        if run is None:
            raise StudentError(f"Student run #{run_id} is not a run of this project "
                               f"(its runs: {', '.join(f'#{r.id}' for r in runs) or 'none'}).")
        if not run.checkpoint:
            raise StudentError(f"Student run #{run_id} saved no model ({run.status}).")
        path = Path(run.checkpoint)
    else:
        saved = [r for r in runs if r.checkpoint and r.status in ("done", "cancelled")]
        if not saved:
            raise StudentError("This project has no trained student yet: run 'distill' "
                               "first.")
        path = Path(max(saved, key=lambda r: r.id).checkpoint)
    return check_model_dir(path)


def predict_frame(predictor: Predictor, frame: pd.DataFrame, *, options: PredictOptions,
                  on_progress: Callable[[int, int], None] | None = None,
                  summary: PredictSummary | None = None) -> pd.DataFrame:
    """``frame`` (string columns, as read) with the prediction columns added; input columns
    that clash with them are renamed ``input_<name>``."""
    summary = summary or PredictSummary()
    started = time.perf_counter()
    texts = frame[options.text_col].tolist()
    keep = [i for i, t in enumerate(texts) if t.strip()]
    probs = predictor.probabilities([texts[i] for i in keep], batch_size=options.batch_size,
                                    on_progress=on_progress)
    k = min(options.top_k, len(predictor.labels))
    labels = [""] * len(texts)
    confidence: list[float | None] = [None] * len(texts)
    top_labels: list[list[str]] = [[] for _ in texts]
    top_probs: list[list[float]] = [[] for _ in texts]
    for row, p in zip(keep, probs):
        best = np.argsort(-p, kind="stable")[:k]
        labels[row] = predictor.labels[best[0]]
        # 4 decimals, as the export writes them (float32 noise is not information).
        confidence[row] = round(float(p[best[0]]), 4)
        top_labels[row] = [predictor.labels[j] for j in best]
        top_probs[row] = [round(float(p[j]), 4) for j in best]
    out = frame.copy()
    for name in OUTPUT_COLUMNS:
        if name in out.columns:
            summary.renamed[name] = f"input_{name}"
    out = out.rename(columns=summary.renamed)
    out["label"], out["confidence"] = labels, confidence
    out["top_labels"], out["top_probs"] = top_labels, top_probs
    summary.rows += len(texts)
    summary.empty_texts += len(texts) - len(keep)
    summary.labels.update(label for label in labels if label)
    summary.seconds += time.perf_counter() - started
    summary.device = str(predictor.device)
    return out


def predict_bytes(predictor: Predictor, data: bytes, *, name: str,
                  options: PredictOptions = PredictOptions(), out_format: str = "csv",
                  on_progress: Callable[[int, int], None] | None = None
                  ) -> tuple[bytes, PredictSummary]:
    """An upload in, the labelled file's bytes out (the app's Predict page)."""
    frame, _ = read_table(data, options=_read_options(options), name=name)
    summary = PredictSummary()
    out = predict_frame(predictor, frame, options=options, on_progress=on_progress,
                        summary=summary)
    buffer = io.BytesIO()
    _WRITERS[_check_format(out_format)](out, buffer)
    return buffer.getvalue(), summary


def predict_file(model_dir: str | Path, in_path: str | Path, out_path: str | Path, *,
                 options: PredictOptions = PredictOptions(),
                 on_progress: Callable[[int, int], None] | None = None,
                 predictor: Predictor | None = None) -> PredictSummary:
    """Label ``in_path`` with the student in ``model_dir``; write ``out_path`` atomically."""
    in_path, out_path = Path(in_path), Path(out_path)
    fmt = _check_format(options.out_format or file_format(out_path))
    if out_path.exists() and out_path.is_dir():
        raise CsvImportError(f"Output path {out_path} is a folder; give a file name.")
    if not out_path.parent.is_dir():
        raise CsvImportError(f"Folder {out_path.parent} does not exist.")
    if out_path.exists() and in_path.exists() and out_path.resolve() == in_path.resolve():
        raise CsvImportError("--out is the input file: give a new file name, the input is "
                             "never overwritten.")
    if predictor is None:
        check_model_dir(model_dir)
    frame, _ = read_table(in_path, options=_read_options(options))
    predictor = predictor or Predictor.from_dir(model_dir, device=options.device)
    summary = PredictSummary()
    out = predict_frame(predictor, frame, options=options, on_progress=on_progress,
                        summary=summary)
    write_atomically(out_path, lambda handle: _WRITERS[fmt](out, handle), error=CsvImportError)
    return summary


def _read_options(options: PredictOptions) -> ImportOptions:
    return ImportOptions(text_col=options.text_col, format=options.in_format,
                         max_chars=10 ** 9)


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise CsvImportError(f"Unknown format {fmt!r}: use csv, jsonl or parquet.")
    return fmt


def _write_csv(frame: pd.DataFrame, handle) -> None:
    flat = frame.copy()
    for name in flat.columns:
        if name in ("top_labels", "top_probs"):
            flat[name] = [json.dumps(v, ensure_ascii=False) for v in flat[name]]
        elif name != "confidence":
            flat[name] = [neutralise(str(v)) for v in flat[name]]
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=True)
    flat.to_csv(text, index=False, lineterminator="\n")
    text.detach()


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts, a missing confidence (an empty text) as None rather than NaN."""
    records = frame.to_dict(orient="records")
    for record in records:
        if isinstance(record["confidence"], float) and np.isnan(record["confidence"]):
            record["confidence"] = None
    return records


def _write_jsonl(frame: pd.DataFrame, handle) -> None:
    for record in _records(frame):
        handle.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")


def _write_parquet(frame: pd.DataFrame, handle) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    fields = [(name, pa.string()) for name in frame.columns if name not in OUTPUT_COLUMNS]
    fields += [("label", pa.string()), ("confidence", pa.float64()),
               ("top_labels", pa.list_(pa.string())), ("top_probs", pa.list_(pa.float64()))]
    schema = pa.schema(fields)
    records = _records(frame)
    table = pa.Table.from_pylist(records, schema=schema) if records else schema.empty_table()
    pq.write_table(table, handle)


_WRITERS = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}
