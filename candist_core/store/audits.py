"""The audit sample: a uniformly random, seeded sample of a project's texts that people
label blind (``decisions.audit = 1``). It is the one unbiased sample the quality estimates
(:mod:`candist_core.audit`) read; queue-chosen decisions are picked for being hard and are
never used for them.

Drawing again extends the sample: the new texts are a uniform draw from those not yet in
it, so the whole sample stays a simple random sample of the project, and nothing already
drawn is ever re-drawn or dropped.
"""
from __future__ import annotations

import json
import random

from ..records import Decision, Sample
from .connection import Connection, now

# The newest audit decision (label or skip) of each drawn sample, not undone since.
AUDIT_DECISIONS = """
    SELECT d.*
    FROM decisions d
    JOIN (SELECT sample_id, MAX(id) AS id FROM decisions
          WHERE project_id = :project AND audit = 1 AND action != 'undo'
            AND id NOT IN (SELECT undoes FROM decisions
                           WHERE project_id = :project AND undoes IS NOT NULL)
          GROUP BY sample_id) latest ON latest.id = d.id
    JOIN audit_samples x ON x.project_id = :project AND x.sample_id = d.sample_id
"""


class AuditsTable:
    """``audit_samples`` (and reads of the audit decisions in ``decisions``)."""

    _c: Connection

    def draw_audit(self, project_id: int, n: int, *, seed: int = 0) -> list[int]:
        """Add ``n`` texts (fewer when the project runs out) drawn uniformly at random from
        those not in the sample yet; returns the new sample ids in draw order. Seeded by
        ``seed`` and the sample's current size, so the same calls draw the same texts."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._c.atomic() as db:
            drawn = {r[0] for r in self._c.tuples(
                "SELECT sample_id FROM audit_samples WHERE project_id = ?", [project_id])}
            pool = [r[0] for r in self._c.tuples(
                "SELECT id FROM samples WHERE project_id = ? ORDER BY id", [project_id])
                if r[0] not in drawn]
            rng = random.Random(seed * 1_000_003 + len(drawn))
            new = rng.sample(pool, min(n, len(pool)))
            created = now()
            db["audit_samples"].insert_all(
                {"project_id": project_id, "sample_id": sid, "position": len(drawn) + i,
                 "seed": seed, "created": created} for i, sid in enumerate(new))
        return new

    def audit_sample(self, project_id: int) -> list[Sample]:
        """Every drawn text in draw order."""
        return [Sample(*r) for r in self._c.tuples(
            "SELECT s.id, s.ext_id, s.text, s.gold FROM audit_samples x "
            "JOIN samples s ON s.id = x.sample_id WHERE x.project_id = ? ORDER BY x.position",
            [project_id])]

    def audit_queue(self, project_id: int, *, limit: int | None = None) -> list[Sample]:
        """Drawn texts with no audit decision yet (label or skip), in draw order: what the
        Review page's Audit mode shows next (without the teacher's candidates)."""
        sql = (f"WITH done AS ({AUDIT_DECISIONS}) "
               "SELECT s.id, s.ext_id, s.text, s.gold FROM audit_samples x "
               "JOIN samples s ON s.id = x.sample_id "
               "WHERE x.project_id = :project AND x.sample_id NOT IN (SELECT sample_id FROM done) "
               "ORDER BY x.position" + (" LIMIT :limit" if limit is not None else ""))
        return [Sample(*r) for r in self._c.tuples(sql, {"project": project_id,
                                                        "limit": limit})]

    def audit_decisions(self, project_id: int) -> dict[int, Decision]:
        """sample id -> its current audit decision (label or skip)."""
        return {r["sample_id"]: Decision.from_row(r)
                for r in self._c.rows(AUDIT_DECISIONS, {"project": project_id})}

    def audit_status(self, project_id: int) -> dict[str, int]:
        """``drawn``, ``labeled`` (audit labels), ``skipped`` and ``left`` to audit."""
        row = self._c.one(f"""
            WITH done AS ({AUDIT_DECISIONS})
            SELECT (SELECT COUNT(*) FROM audit_samples WHERE project_id = :project) AS drawn,
                   (SELECT COUNT(*) FROM done WHERE action = 'label') AS labeled,
                   (SELECT COUNT(*) FROM done WHERE action = 'skip') AS skipped""",
                          {"project": project_id})
        return {**row, "left": row["drawn"] - row["labeled"] - row["skipped"]}

    def audit_evidence(self, project_id: int, *, teacher_run: int | None,
                       student_run: int | None) -> list[dict]:
        """One row per audit label: the label, when it was made, the teacher run's label
        and candidates, the student run's label, and whether a queue-chosen (non-audit)
        label decision of the same text is current or was made before the audit label."""
        rows = self._c.rows(f"""
            WITH done AS ({AUDIT_DECISIONS})
            SELECT d.sample_id, d.label, d.id AS decision_id, d.created,
                   a.label AS teacher_label, a.candidates, p.label AS student_label,
                   EXISTS (SELECT 1 FROM decisions q WHERE q.project_id = :project
                           AND q.sample_id = d.sample_id AND q.audit = 0
                           AND q.action = 'label'
                           AND q.id NOT IN (SELECT undoes FROM decisions
                                            WHERE project_id = :project
                                            AND undoes IS NOT NULL)) AS queue_labeled
            FROM done d
            LEFT JOIN annotations a ON a.sample_id = d.sample_id AND a.run_id = :teacher
            LEFT JOIN predictions p ON p.sample_id = d.sample_id AND p.run_id = :student
            WHERE d.action = 'label' ORDER BY d.id""",
                            {"project": project_id, "teacher": teacher_run or -1,
                             "student": student_run or -1})
        for r in rows:
            r["candidates"] = json.loads(r["candidates"]) if r["candidates"] else None
            r["queue_labeled"] = bool(r["queue_labeled"])
        return rows

    def human_label_count(self, project_id: int) -> int:
        """Samples whose current decision is a label (the export's human rows)."""
        from .decisions import CURRENT_DECISIONS
        return self._c.scalar(f"SELECT COUNT(*) FROM ({CURRENT_DECISIONS}) "
                              "WHERE action = 'label'", {"project": project_id})
