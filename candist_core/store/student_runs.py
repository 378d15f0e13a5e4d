"""Student runs (one distillation each) and the predictions of the finished ones."""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from ..records import Prediction, ProjectError, StudentRun, pack_probs
from .connection import Connection, now


def _optional(values: np.ndarray | None, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, dtype=float)]


class StudentRunsTable:
    """``student_runs`` and ``predictions``."""

    _c: Connection

    def create_student_run(self, project_id: int, *, teacher_run_id: int | None, method: str,
                           config: dict, worker: str | None = None) -> int:
        """A run marked 'running'; ``worker`` names the process that trains it, so a run
        whose process died can be told from one still going."""
        with self._c.lock:
            return self._c.table("student_runs").insert({
                "project_id": project_id, "teacher_run_id": teacher_run_id, "method": method,
                "config": json.dumps(config, sort_keys=True), "status": "running",
                "created": now(), "worker": worker}).last_pk

    def record_student_epoch(self, run_id: int, metrics: dict) -> None:
        """Append one epoch's metrics to the run (committed: a crash keeps the curve)."""
        with self._c.atomic() as db:
            epochs = json.loads(self._c.scalar("SELECT epochs FROM student_runs WHERE id = ?",
                                               [run_id]))
            db["student_runs"].update(run_id, {"epochs": json.dumps(epochs + [metrics])})

    def finish_student_run(self, run_id: int, *, status: str, best_epoch: int | None = None,
                           checkpoint: str | None = None, error: str | None = None) -> None:
        with self._c.lock:
            self._c.table("student_runs").update(run_id, {
                "status": status, "best_epoch": best_epoch, "checkpoint": checkpoint,
                "error": error, "finished": now()})

    def set_student_checkpoint(self, run_id: int, checkpoint: str | None) -> None:
        """Point a finished run at its model folder, or at none (the folder was removed)."""
        with self._c.lock:
            self._c.table("student_runs").update(run_id, {"checkpoint": checkpoint})

    def running_student_runs(self, project_id: int) -> list[StudentRun]:
        return [StudentRun.from_row(r) for r in self._c.rows(
            "SELECT * FROM student_runs WHERE project_id = ? AND status = 'running'",
            [project_id])]

    def student_run(self, run_id: int) -> StudentRun:
        row = self._c.one("SELECT * FROM student_runs WHERE id = ?", [run_id])
        if row is None:
            raise ProjectError(f"No student run #{run_id}.")
        return StudentRun.from_row(row)

    def student_runs(self, project_id: int) -> list[StudentRun]:
        """Newest first."""
        return [StudentRun.from_row(r) for r in self._c.rows(
            "SELECT * FROM student_runs WHERE project_id = ? ORDER BY id DESC", [project_id])]

    def latest_student_run(self, project_id: int) -> StudentRun | None:
        """The newest finished run: the one whose predictions the app shows and exports."""
        row = self._c.one("SELECT * FROM student_runs WHERE project_id = ? AND status = 'done' "
                          "ORDER BY id DESC LIMIT 1", [project_id])
        return StudentRun.from_row(row) if row else None

    def write_predictions(self, run_id: int, sample_ids: Sequence[int], probs: np.ndarray,
                          labels: Sequence[str], *, entropy: np.ndarray,
                          out_of_candidate: np.ndarray, high_confidence: np.ndarray,
                          small_loss: np.ndarray, label_issue: np.ndarray | None = None,
                          oos_confidence: np.ndarray | None = None) -> None:
        """Replace the run's predictions in one transaction: a run is never half-written.
        ``probs`` is (N, C) in ``labels`` order, aligned with ``sample_ids``;
        ``label_issue``: the label-quality score of the teacher's label and
        ``oos_confidence`` the out-of-sample probability of the student's label (NaN or
        None: none)."""
        probs = np.asarray(probs, dtype=np.float32)
        top = probs.argmax(1)
        issue, oos = _optional(label_issue, len(probs)), _optional(oos_confidence, len(probs))
        with self._c.atomic() as db:
            db["predictions"].delete_where("run_id = ?", [run_id])
            db["predictions"].insert_all((
                {"run_id": run_id, "sample_id": sid, "probs": pack_probs(probs[i]),
                 "label": labels[int(top[i])], "confidence": float(probs[i][top[i]]),
                 "entropy": float(entropy[i]), "out_of_candidate": int(out_of_candidate[i]),
                 "high_confidence": int(high_confidence[i]), "small_loss": int(small_loss[i]),
                 "label_issue": issue[i], "oos_confidence": oos[i]}
                for i, sid in enumerate(sample_ids)), batch_size=500)
        self.__dict__.pop("_signals_cache", None)   # Queries.review_signals' run columns

    def drop_predictions(self, run_id: int) -> None:
        """Delete a run's predictions (the run row and its records stay)."""
        self._c.write("DELETE FROM predictions WHERE run_id = ?", [run_id])
        self.__dict__.pop("_signals_cache", None)

    def predictions(self, run_id: int) -> list[Prediction]:
        return [Prediction.from_row(r) for r in self._c.rows(
            "SELECT * FROM predictions WHERE run_id = ? ORDER BY sample_id", [run_id])]

    def prediction(self, run_id: int, sample_id: int) -> Prediction | None:
        row = self._c.one("SELECT * FROM predictions WHERE run_id = ? AND sample_id = ?",
                          [run_id, sample_id])
        return Prediction.from_row(row) if row else None
