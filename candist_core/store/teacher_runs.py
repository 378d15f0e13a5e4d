"""Teacher runs, their per-sample annotations, and the cache of paid-for LLM replies."""
from __future__ import annotations

import json

from ..records import Annotation, ProjectError, TeacherRun
from .connection import Connection, now

_NEXT_USE = "(SELECT COALESCE(MAX(use_order), 0) + 1 FROM teacher_runs)"


class TeacherRunsTable:
    """``teacher_runs`` and ``annotations``."""

    _c: Connection

    def create_teacher_run(self, project_id: int, *, teacher: str, model: str,
                           strategy: str, params: dict) -> int:
        return self._c.write(
            "INSERT INTO teacher_runs (project_id, teacher, model, strategy, params, status, "
            f"created, use_order) VALUES (?,?,?,?,?,?,?,{_NEXT_USE})",
            [project_id, teacher, model, strategy, json.dumps(params, sort_keys=True),
             "running", now()])

    def find_teacher_run(self, project_id: int, *, teacher: str, model: str, strategy: str,
                         params: dict) -> int | None:
        """The newest run with exactly these settings (used to resume)."""
        return self._c.scalar(
            "SELECT id FROM teacher_runs WHERE project_id = ? AND teacher = ? AND model = ? "
            "AND strategy = ? AND params = ? ORDER BY id DESC LIMIT 1",
            [project_id, teacher, model, strategy, json.dumps(params, sort_keys=True)])

    def set_teacher_run_status(self, run_id: int, status: str,
                               summary: dict | None = None) -> None:
        """``running`` makes the run the latest used; any other status finishes it."""
        self._c.write("UPDATE teacher_runs SET status = ?, summary = ?, finished = ?"
                      + (f", use_order = {_NEXT_USE}" if status == "running" else "")
                      + " WHERE id = ?",
                      [status, json.dumps(summary) if summary is not None else None,
                       now() if status != "running" else None, run_id])

    def delete_teacher_run(self, run_id: int) -> None:
        """Delete a run and its annotations (student runs that learned from it keep their
        rows, with no teacher run). Only for runs derived from what is kept, never for
        paid-for replies: see ``distill.prune_superseded_updates``."""
        self._c.write("DELETE FROM teacher_runs WHERE id = ?", [run_id])

    def teacher_run(self, run_id: int) -> TeacherRun:
        row = self._c.one("SELECT * FROM teacher_runs WHERE id = ?", [run_id])
        if row is None:
            raise ProjectError(f"No teacher run #{run_id}.")
        return TeacherRun.from_row(row)

    def teacher_runs(self, project_id: int) -> list[TeacherRun]:
        """Newest use first."""
        return [TeacherRun.from_row(r) for r in self._c.rows(
            "SELECT * FROM teacher_runs WHERE project_id = ? ORDER BY use_order DESC, id DESC",
            [project_id])]

    def latest_teacher_run(self, project_id: int) -> TeacherRun | None:
        """The most recently used run (a resumed run counts as new) with annotations."""
        row = self._c.one(
            "SELECT t.* FROM teacher_runs t WHERE t.project_id = ? AND EXISTS "
            "(SELECT 1 FROM annotations a WHERE a.run_id = t.id AND a.candidates IS NOT NULL) "
            "ORDER BY t.use_order DESC, t.id DESC LIMIT 1", [project_id])
        return TeacherRun.from_row(row) if row else None

    def record_annotation(self, run_id: int, sample_id: int, *, candidates: list[str] | None,
                          label: str | None, confidence: float | None, raw: str | None,
                          prompt_tokens: int = 0, completion_tokens: int = 0,
                          latency_ms: float | None = None, error_kind: str | None = None,
                          error: str | None = None, cache_key: str | None = None) -> None:
        """Upsert one sample's result, committed on return; a success replaces an earlier
        error row of the same run and sample."""
        with self._c.lock:
            self._c.table("annotations").upsert({
                "run_id": run_id, "sample_id": sample_id,
                "candidates": json.dumps(candidates) if candidates is not None else None,
                "label": label, "confidence": confidence, "raw": raw,
                "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "latency_ms": latency_ms, "error_kind": error_kind, "error": error,
                "cache_key": cache_key, "created": now()}, pk=("run_id", "sample_id"))

    def record_annotations(self, run_id: int, rows: list[dict]) -> None:
        """Bulk form of :meth:`record_annotation` (``sample_id``, ``candidates``, ``label``,
        optional ``confidence`` and ``raw`` per row), in one transaction."""
        created = now()
        with self._c.atomic() as db:
            db["annotations"].insert_all((
                {"run_id": run_id, "sample_id": r["sample_id"],
                 "candidates": json.dumps(r["candidates"]), "label": r["label"],
                 "confidence": r.get("confidence"), "raw": r.get("raw"), "created": created}
                for r in rows), replace=True, batch_size=500)

    def done_sample_ids(self, run_id: int) -> set[int]:
        """Samples of a run that have a successful (non-error) annotation."""
        return {r[0] for r in self._c.tuples(
            "SELECT sample_id FROM annotations WHERE run_id = ? AND error_kind IS NULL",
            [run_id])}

    def annotations(self, run_id: int, *, errors_only: bool = False) -> list[Annotation]:
        """Every row of a run with its sample's id, text and gold label."""
        sql = ("SELECT a.*, s.ext_id, s.text, s.gold FROM annotations a "
               "JOIN samples s ON s.id = a.sample_id WHERE a.run_id = ?")
        if errors_only:
            sql += " AND a.error_kind IS NOT NULL"
        return [Annotation.from_row(r) for r in self._c.rows(sql + " ORDER BY a.sample_id",
                                                               [run_id])]

    def annotation_summary(self, run_id: int) -> list[Annotation]:
        """Candidates, label, error kind and gold of every row of a run (no texts)."""
        return [Annotation.from_row(r) for r in self._c.rows(
            "SELECT a.sample_id, a.candidates, a.label, a.error_kind, s.gold "
            "FROM annotations a JOIN samples s ON s.id = a.sample_id "
            "WHERE a.run_id = ? ORDER BY a.sample_id", [run_id])]

    def mean_set_size(self, run_id: int) -> tuple[float | None, int]:
        """(mean candidate-set size, annotated samples) of a run, aggregated in SQL."""
        row = self._c.tuples(
            "SELECT AVG(json_array_length(candidates)), COUNT(*) FROM annotations "
            "WHERE run_id = ? AND candidates IS NOT NULL", [run_id])[0]
        return row[0], row[1]

    def gold_agreement(self, run_id: int) -> tuple[int, int, int]:
        """(samples with a gold label and a candidate set, top label = gold, gold in the
        set) of a run, aggregated in SQL (the quality gate's gold-label check)."""
        row = self._c.tuples(
            "SELECT COUNT(*), COALESCE(SUM(a.label = s.gold), 0), COALESCE(SUM(EXISTS "
            "(SELECT 1 FROM json_each(a.candidates) WHERE value = s.gold)), 0) "
            "FROM annotations a JOIN samples s ON s.id = a.sample_id "
            "WHERE a.run_id = ? AND a.candidates IS NOT NULL AND s.gold IS NOT NULL",
            [run_id])[0]
        return int(row[0]), int(row[1]), int(row[2])


class ReplyCacheTable:
    """``llm_cache``: successful LLM replies by request hash (errors are never cached), so a
    re-run or a resumed run never pays twice."""

    _c: Connection

    def cache_get(self, key: str) -> dict | None:
        reply = self._c.scalar("SELECT reply FROM llm_cache WHERE key = ?", [key])
        return json.loads(reply) if reply else None

    def cache_put(self, key: str, model: str, reply: dict) -> None:
        with self._c.lock:
            self._c.table("llm_cache").insert(
                {"key": key, "model": model, "reply": json.dumps(reply), "created": now()},
                replace=True)
