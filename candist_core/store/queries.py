"""Reads shaped for one screen or file, joining several tables: the export, the prediction
browser, the review queue's signals and the status strip. They take ids and filter names
from the tuples below, never display text; the pages own their wording."""
from __future__ import annotations

import json
from typing import Iterator

import numpy as np

from ..records import ExportRow
from .audits import AUDIT_DECISIONS
from .connection import Connection
from .decisions import CURRENT_DECISIONS

# Filter and sort names of the prediction browser -> their SQL.
PREDICTION_FILTERS = {
    "any": "",
    "disagrees_with_teacher": " AND a.label IS NOT NULL AND a.label != p.label",
    "disagrees_with_human": " AND cur.action = 'label' AND cur.label != p.label",
    "outside_candidates": " AND p.out_of_candidate = 1",
}
PREDICTION_ORDERS = {
    "confidence_ascending": "p.confidence ASC, s.id",
    "confidence_descending": "p.confidence DESC, s.id",
    "id": "s.id",
}


class Queries:
    """Screen-shaped reads (the mixin of :class:`Store` that joins across tables)."""

    _c: Connection

    def _latest_run_ids(self, project_id: int) -> tuple[int, int]:
        """(latest teacher run, latest finished student run), -1 where there is none."""
        teacher = self.latest_teacher_run(project_id)
        student = self.latest_student_run(project_id)
        return teacher.id if teacher else -1, student.id if student else -1

    # ------------------------------------------------------------------ export
    def export_rows(self, project_id: int, *, limit: int | None = None) -> Iterator[ExportRow]:
        """Every sample with its current human decision, latest student prediction and
        latest teacher annotation, in import order (one query)."""
        teacher, student = self._latest_run_ids(project_id)
        sql = f"""
            WITH cur AS ({CURRENT_DECISIONS})
            SELECT s.id, s.ext_id, s.text, s.gold, cur.action, cur.label,
                   p.label, p.confidence, a.label, a.confidence, a.candidates
            FROM samples s
            LEFT JOIN cur ON cur.sample_id = s.id
            LEFT JOIN predictions p ON p.sample_id = s.id AND p.run_id = :student
            LEFT JOIN annotations a ON a.sample_id = s.id AND a.run_id = :teacher
            WHERE s.project_id = :project
            ORDER BY s.id
        """ + (" LIMIT :limit" if limit is not None else "")
        rows = self._c.tuples(sql, {"project": project_id, "student": student,
                                    "teacher": teacher, "limit": limit})
        return (ExportRow(*row) for row in rows)

    # ------------------------------------------------------------- predictions
    def _prediction_query(self, select: str, run_id: int, *, label: str | None,
                          agreement: str) -> tuple[str, dict]:
        if agreement not in PREDICTION_FILTERS:
            raise ValueError(f"unknown agreement filter {agreement!r}: use one of "
                             f"{', '.join(PREDICTION_FILTERS)}")
        run = self.student_run(run_id)
        sql = (f"WITH cur AS ({CURRENT_DECISIONS}) SELECT {select} FROM predictions p "
               "JOIN samples s ON s.id = p.sample_id "
               "LEFT JOIN annotations a ON a.sample_id = p.sample_id AND a.run_id = :teacher "
               "LEFT JOIN cur ON cur.sample_id = p.sample_id WHERE p.run_id = :run"
               + (" AND p.label = :label" if label else "")
               + PREDICTION_FILTERS[agreement])
        return sql, {"run": run_id, "project": run.project_id,
                     "teacher": run.teacher_run_id or -1, "label": label}

    def count_predictions(self, run_id: int, *, label: str | None = None,
                          agreement: str = "any") -> int:
        sql, params = self._prediction_query("COUNT(*)", run_id, label=label,
                                             agreement=agreement)
        return self._c.scalar(sql, params)

    def prediction_page(self, run_id: int, *, label: str | None = None,
                        agreement: str = "any", order: str = "id", limit: int = 50,
                        offset: int = 0) -> list[dict]:
        """One page of predictions with the text, candidates and decisions (SQL-paged),
        as table rows for display."""
        if order not in PREDICTION_ORDERS:
            raise ValueError(f"unknown order {order!r}: use one of "
                             f"{', '.join(PREDICTION_ORDERS)}")
        sql, params = self._prediction_query(
            "s.id AS sample_id, s.ext_id AS id, s.text, p.label AS student, "
            "ROUND(p.confidence, 3) AS confidence, a.label AS teacher, "
            "a.candidates AS candidates, cur.label AS human, "
            "p.out_of_candidate AS outside_candidates", run_id, label=label,
            agreement=agreement)
        sql += f" ORDER BY {PREDICTION_ORDERS[order]} LIMIT :limit OFFSET :offset"
        return self._c.rows(sql, {**params, "limit": limit, "offset": offset})

    def prediction_summary(self, run_id: int) -> dict:
        """Per-class counts and (student, reference, count) triples for confusion
        matrices against human decisions and gold labels, aggregated in SQL."""
        project_id = self.student_run(run_id).project_id
        per_class = self._c.rows(
            "SELECT p.label AS label, COUNT(*) AS predicted, ROUND(AVG(p.confidence), 3) "
            "AS mean_confidence, SUM(p.out_of_candidate) AS outside_candidates "
            "FROM predictions p WHERE p.run_id = ? GROUP BY p.label ORDER BY predicted DESC",
            [run_id])
        human = self._c.tuples(
            f"WITH cur AS ({CURRENT_DECISIONS}) SELECT p.label, cur.label, COUNT(*) "
            "FROM predictions p JOIN cur ON cur.sample_id = p.sample_id "
            "WHERE p.run_id = :run AND cur.action = 'label' GROUP BY p.label, cur.label",
            {"run": run_id, "project": project_id})
        gold = self._c.tuples(
            "SELECT p.label, s.gold, COUNT(*) FROM predictions p "
            "JOIN samples s ON s.id = p.sample_id WHERE p.run_id = ? AND s.gold IS NOT NULL "
            "GROUP BY p.label, s.gold", [run_id])
        return {"per_class": per_class, "human": [tuple(r) for r in human],
                "gold": [tuple(r) for r in gold]}

    # ------------------------------------------------------------------ review
    def review_signals(self, project_id: int) -> dict[str, np.ndarray | list]:
        """Compact per-sample columns the review queue ranks on (latest teacher and student
        runs); one query, no texts. See :func:`candist_core.review.rank_ambiguous`."""
        teacher, student = self._latest_run_ids(project_id)
        rows = self._c.tuples(f"""
            WITH cur AS ({CURRENT_DECISIONS})
            SELECT s.id, a.candidates, a.label, a.confidence, p.label, p.confidence,
                   p.entropy, p.out_of_candidate, cur.action
            FROM samples s
            LEFT JOIN annotations a ON a.sample_id = s.id AND a.run_id = :teacher
            LEFT JOIN predictions p ON p.sample_id = s.id AND p.run_id = :student
            LEFT JOIN cur ON cur.sample_id = s.id
            WHERE s.project_id = :project ORDER BY s.id""",
            {"project": project_id, "teacher": teacher, "student": student})
        cols = list(zip(*rows)) if rows else [[] for _ in range(9)]

        def floats(values) -> np.ndarray:
            return np.array([np.nan if v is None else v for v in values], dtype=float)

        return {
            "sample_id": np.array(cols[0], dtype=np.int64),
            "candidates": [json.loads(c) if c else [] for c in cols[1]],
            "teacher_label": list(cols[2]),
            "teacher_confidence": floats(cols[3]),
            "student_label": list(cols[4]),
            "student_confidence": floats(cols[5]),
            "entropy": floats(cols[6]),
            "out_of_candidate": np.array([bool(o) for o in cols[7]], dtype=bool),
            "decided": np.array([a is not None for a in cols[8]], dtype=bool),
            "teacher_run": teacher if teacher >= 0 else None,
            "student_run": student if student >= 0 else None,
        }

    # ------------------------------------------------------------------ counts
    def status_counts(self, project_id: int) -> dict[str, int]:
        """The numbers of the home page's status strip (and of ``metrics --json``)."""
        teacher, _ = self._latest_run_ids(project_id)
        row = self._c.one(f"""
            SELECT (SELECT COUNT(*) FROM samples WHERE project_id = :project) AS samples,
                   (SELECT COUNT(*) FROM samples WHERE project_id = :project
                    AND gold IS NOT NULL) AS with_gold,
                   (SELECT COUNT(*) FROM annotations WHERE run_id = :t
                    AND candidates IS NOT NULL) AS annotated,
                   (SELECT COUNT(*) FROM annotations WHERE run_id = :t
                    AND json_array_length(candidates) > 1) AS ambiguous,
                   (SELECT COUNT(*) FROM ({CURRENT_DECISIONS})) AS reviewed,
                   (SELECT COUNT(*) FROM teacher_runs
                    WHERE project_id = :project) AS teacher_runs,
                   (SELECT COUNT(*) FROM student_runs WHERE project_id = :project
                    AND status = 'done') AS student_runs,
                   (SELECT COUNT(*) FROM ({AUDIT_DECISIONS})
                    WHERE action = 'label') AS audited""",
                          {"project": project_id, "t": teacher})
        return dict(row)
