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
from .decisions import CURRENT_DECISIONS, REVIEWER_DECISIONS

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
    def export_rows(self, project_id: int, *, limit: int | None = None,
                    texts: bool = True) -> Iterator[ExportRow]:
        """Every sample with its current human decision, latest student prediction and
        latest teacher annotation, in import order; ``annotators``: how many people have
        a current (non-resolution) label on the text. ``texts=False`` leaves ``text`` ''
        and ``candidates`` None: for counts, at a fraction of the read."""
        teacher, student = self._latest_run_ids(project_id)
        # The current decisions and the annotator counts are read apart (a few thousand
        # rows) and joined here: a LEFT JOIN on the CURRENT_DECISIONS CTE made SQLite scan
        # it once per sample (about 30 s for 100,000 texts and 2,000 decisions).
        params = {"project": project_id, "student": student, "teacher": teacher,
                  "limit": limit}
        human = {r[0]: (r[1], r[2]) for r in self._c.tuples(
            f"SELECT sample_id, action, label FROM ({CURRENT_DECISIONS})", params)}
        annotators = dict(self._c.tuples(
            f"SELECT sample_id, COUNT(*) FROM ({REVIEWER_DECISIONS}) WHERE action = 'label' "
            f"GROUP BY sample_id", params))
        sql = f"""
            SELECT s.id, s.ext_id, {"s.text" if texts else "''"}, s.gold,
                   p.label, p.confidence, a.label, a.confidence,
                   {"a.candidates" if texts else "NULL"}
            FROM samples s
            LEFT JOIN predictions p ON p.sample_id = s.id AND p.run_id = :student
            LEFT JOIN annotations a ON a.sample_id = s.id AND a.run_id = :teacher
            WHERE s.project_id = :project
            ORDER BY s.id
        """ + (" LIMIT :limit" if limit is not None else "")
        none = (None, None)
        return (ExportRow(*row[:4], *human.get(row[0], none), *row[4:],
                          annotators.get(row[0], 0))
                for row in self._c.tuples(sql, params))

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
            "a.candidates AS candidates, "
            "CASE WHEN cur.action = 'skip' THEN '(skipped)' ELSE cur.label END AS human, "
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
        runs), no texts. See :func:`candist_core.review.rank_ambiguous`.

        The run columns are most of a cold Review page at 100,000 texts, and they change
        only when texts are imported, a teacher run writes annotations or a student run
        finishes; so they are kept on this store per project, keyed by that state, except
        while the teacher run is still running (a finished student run's predictions are
        not rewritten; ``write_predictions`` through this store drops the cache anyway).
        ``decided`` is read fresh on every call. The columns are shared: do not mutate."""
        run = self.latest_teacher_run(project_id)
        latest_student = self.latest_student_run(project_id)
        teacher = run.id if run else -1
        student = latest_student.id if latest_student else -1
        state = self._c.tuples(
            "SELECT COUNT(*), MAX(id) FROM samples WHERE project_id = ?", [project_id])[0]
        key = (teacher, run.use_order if run else 0, run.finished if run else None,
               student, *state)
        cache = self.__dict__.setdefault("_signals_cache", {})
        cached = cache.get(project_id)
        if cached is not None and cached[0] == key and run is not None \
                and run.status != "running":
            columns = cached[1]
        else:
            columns = self._run_signals(project_id, teacher, student)
            cache[project_id] = (key, columns)
        return {**columns,
                "decided": np.isin(columns["sample_id"], self.decided_ids(project_id)),
                "teacher_run": teacher if teacher >= 0 else None,
                "student_run": student if student >= 0 else None}

    def decided_ids(self, project_id: int) -> np.ndarray:
        """The ids of the texts with a current decision (label or skip), as one array:
        what the Review page counts on every key press, without a record per decision."""
        return np.fromstring(self._c.scalar(
            f"SELECT group_concat(sample_id) FROM ({CURRENT_DECISIONS})",
            {"project": project_id}) or "", dtype=np.int64, sep=",")

    def _run_signals(self, project_id: int, teacher: int, student: int) -> dict:
        """The run columns of :meth:`review_signals`. Each table is read as a handful of
        ``group_concat`` strings (one per column, built in SQLite's C code) rather than
        100,000 row tuples, and parsed by numpy and one ``json.loads``: about half the
        time of a row-wise read at 100,000 texts."""
        ids = np.fromstring(self._c.scalar(
            "SELECT group_concat(id) FROM (SELECT id FROM samples WHERE project_id = ? "
            "ORDER BY id)", [project_id]) or "", dtype=np.int64, sep=",")
        n = len(ids)
        ann = self._c.tuples(
            "SELECT group_concat(sample_id), '[' || group_concat(ifnull(candidates, '[]')) "
            "|| ']', group_concat(ifnull(label, ''), char(31)), "
            "group_concat(ifnull(confidence, 'nan')) FROM (SELECT * FROM annotations "
            "WHERE run_id = ? ORDER BY sample_id)", [teacher])[0]
        pred = self._c.tuples(
            "SELECT group_concat(sample_id), group_concat(label, char(31)), "
            "group_concat(confidence), group_concat(entropy), group_concat(out_of_candidate), "
            "group_concat(ifnull(label_issue, 'nan')), group_concat(ifnull(oos_confidence, 'nan')) "
            "FROM (SELECT sample_id, label, confidence, entropy, out_of_candidate, label_issue, "
            "oos_confidence "
            "FROM predictions WHERE run_id = ? ORDER BY sample_id)", [student])[0]

        def place(sample_ids: str | None) -> tuple[np.ndarray, np.ndarray]:
            """(positions in ``ids``, positions in the column) of the rows whose sample is
            still in the project; every column of one query shares the row order."""
            got = np.fromstring(sample_ids or "", dtype=np.int64, sep=",")
            if len(got) == n and np.array_equal(got, ids):   # the usual case
                return np.arange(n), np.arange(n)
            pos = np.minimum(np.searchsorted(ids, got), max(n - 1, 0))
            ok = ids[pos] == got if n else np.zeros(len(got), dtype=bool)
            return pos[ok], np.flatnonzero(ok)

        def strings(at, rows, joined: str | None) -> list:
            """Labels per sample; None where there is none (read as '')."""
            values = [v or None for v in joined.split("\x1f")] if joined is not None else []
            if len(at) == n:
                return values
            out: list = [None] * n
            for i, k in zip(at.tolist(), rows.tolist()):
                out[i] = values[k]
            return out

        def floats(at, rows, joined: str | None) -> np.ndarray:
            out = np.full(n, np.nan)
            out[at] = np.fromstring(joined or "", sep=",")[rows]
            return out

        at, rows = place(ann[0])
        parsed = json.loads(ann[1]) if ann[1] else []
        candidates = [parsed[k] for k in rows.tolist()] if len(at) < n or len(parsed) != n \
            else parsed
        if len(at) < n:
            full: list = [[] for _ in range(n)]
            for i, c in zip(at.tolist(), candidates):
                full[i] = c
            candidates = full
        teacher_label = strings(at, rows, ann[2])
        teacher_conf = floats(at, rows, ann[3])
        at, rows = place(pred[0])
        student_label = strings(at, rows, pred[1])
        student_conf = floats(at, rows, pred[2])
        entropy = floats(at, rows, pred[3])
        outside = np.zeros(n, dtype=bool)
        outside[at] = np.fromstring(pred[4] or "", dtype=np.int64, sep=",")[rows] > 0
        label_issue = floats(at, rows, pred[5])
        oos_confidence = floats(at, rows, pred[6])
        return {"sample_id": ids, "candidates": candidates, "teacher_label": teacher_label,
                "teacher_confidence": teacher_conf, "student_label": student_label,
                "student_confidence": student_conf, "entropy": entropy,
                "out_of_candidate": outside, "label_issue": label_issue,
                "oos_confidence": oos_confidence}

    # ------------------------------------------------------------------ counts
    def status_counts(self, project_id: int) -> dict[str, int]:
        """The numbers of the home page's status strip (and of ``metrics --json``)."""
        teacher, _ = self._latest_run_ids(project_id)
        row = self._c.one(f"""
            WITH current AS MATERIALIZED (SELECT sample_id FROM ({CURRENT_DECISIONS}))
            SELECT (SELECT COUNT(*) FROM samples WHERE project_id = :project) AS samples,
                   (SELECT COUNT(*) FROM samples WHERE project_id = :project
                    AND gold IS NOT NULL) AS with_gold,
                   (SELECT COUNT(*) FROM annotations WHERE run_id = :t
                    AND candidates IS NOT NULL) AS annotated,
                   (SELECT COUNT(*) FROM annotations WHERE run_id = :t
                    AND json_array_length(candidates) > 1) AS ambiguous,
                   (SELECT COUNT(*) FROM current) AS reviewed,
                   (SELECT COUNT(*) FROM current JOIN annotations a
                    ON a.run_id = :t AND a.sample_id = current.sample_id
                    AND json_array_length(a.candidates) > 1) AS ambiguous_reviewed,
                   (SELECT COUNT(*) FROM teacher_runs
                    WHERE project_id = :project) AS teacher_runs,
                   (SELECT COUNT(*) FROM student_runs WHERE project_id = :project
                    AND status = 'done') AS student_runs,
                   (SELECT COUNT(*) FROM ({AUDIT_DECISIONS})
                    WHERE action = 'label') AS audited""",
                          {"project": project_id, "t": teacher})
        return dict(row)
