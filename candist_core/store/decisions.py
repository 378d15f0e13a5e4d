"""Human review decisions: an append-only log (label, skip, undo), never updated in place,
so every change a reviewer made stays in the audit trail."""
from __future__ import annotations

from ..records import Decision
from .connection import Connection, now

# The decision rows that are current: the newest label/skip of a sample not undone since.
CURRENT_DECISIONS = """
    SELECT d.*
    FROM decisions d
    JOIN (SELECT sample_id, MAX(id) AS id FROM decisions
          WHERE project_id = :project AND action != 'undo'
            AND id NOT IN (SELECT undoes FROM decisions
                           WHERE project_id = :project AND undoes IS NOT NULL)
          GROUP BY sample_id) latest ON latest.id = d.id
"""

# Per (sample, who): that person's newest own decision (not an owner's resolution of a
# conflict) not undone since. A reviewer's history reads these, so a text two people
# labelled (team overlap) stays in both histories whichever of them decided last; their
# 'label' rows are the ratings agreement is computed from (store.team).
REVIEWER_DECISIONS = """
    SELECT d.*
    FROM decisions d
    JOIN (SELECT sample_id, who, MAX(id) AS id FROM decisions
          WHERE project_id = :project AND action != 'undo' AND resolution = 0
            AND id NOT IN (SELECT undoes FROM decisions
                           WHERE project_id = :project AND undoes IS NOT NULL)
          GROUP BY sample_id, who) latest ON latest.id = d.id
"""

ACTIONS = ("label", "skip")


class DecisionsTable:
    """``decisions``."""

    _c: Connection

    def record_decision(self, project_id: int, sample_id: int, *, action: str,
                        label: str | None = None, in_candidates: bool | None = None,
                        who: str = "", note: str = "", audit: bool = False,
                        resolution: bool = False) -> int:
        """Append a human decision (``label`` or ``skip``); committed on return, together
        with the release of ``who``'s lease on the text (``store.team``).
        ``audit``: made blind on a text of the audit sample (see ``store.audits``);
        ``resolution``: an owner's resolution of a conflict between reviewers."""
        row = _decision_row(project_id, sample_id, action=action, label=label,
                            in_candidates=in_candidates, who=who, note=note, audit=audit,
                            resolution=resolution)
        with self._c.atomic() as db:
            decision_id = db["decisions"].insert(row).last_pk
            db.execute("DELETE FROM leases WHERE project_id = ? AND sample_id = ? AND who = ?",
                       [project_id, sample_id, who])
        return decision_id

    def record_decisions(self, project_id: int, labels: dict[int, str], *, who: str = "",
                         audit: bool = False) -> int:
        """Append one ``label`` decision per sample id -> label, all or none (one
        transaction); returns how many were written."""
        rows = [_decision_row(project_id, sid, action="label", label=label, who=who,
                              audit=audit) for sid, label in labels.items()]
        with self._c.atomic() as db:
            db["decisions"].insert_all(rows, batch_size=500)
            db.conn.executemany("DELETE FROM leases WHERE project_id = ? AND sample_id = ? "
                           "AND who = ?", [(project_id, sid, who) for sid in labels])
        return len(rows)

    def undo_decision(self, project_id: int, *, who: str = "") -> Decision | None:
        """Undo the newest still-current decision of ``who``; returns it, or None."""
        with self._c.atomic() as db:
            row = self._c.one(
                "SELECT * FROM decisions WHERE project_id = ? AND who = ? AND action != 'undo' "
                "AND resolution = 0 AND id NOT IN (SELECT undoes FROM decisions WHERE project_id = ? "
                "AND undoes IS NOT NULL) ORDER BY id DESC LIMIT 1",
                [project_id, who, project_id])
            if row is None:
                return None
            db["decisions"].insert(_undo_row(project_id, row, who))
        return Decision.from_row(row)

    def current_decisions(self, project_id: int) -> dict[int, Decision]:
        """sample id -> its current decision (label or skip)."""
        return {r["sample_id"]: Decision.from_row(r)
                for r in self._c.rows(CURRENT_DECISIONS, {"project": project_id})}

    def decision_log(self, project_id: int, *, limit: int = 100) -> list[Decision]:
        """Every decision, undos included, newest first."""
        return [Decision.from_row(r) for r in self._c.rows(
            "SELECT * FROM decisions WHERE project_id = ? ORDER BY id DESC LIMIT ?",
            [project_id, limit])]

    def recent_decisions(self, project_id: int, *, who: str | None = None,
                         limit: int = 10) -> list[Decision]:
        """The current decisions (label or skip, not undone), newest first. With ``who``:
        that person's own current decisions (per text, their newest not undone, even when
        someone else decided the text after them). The Review page's history, where any
        of them can be changed (a new decision) or undone (an ``undo`` row): the log keeps
        every step."""
        if who is None:
            return [Decision.from_row(r) for r in self._c.rows(
                "SELECT * FROM (" + CURRENT_DECISIONS + ") ORDER BY id DESC LIMIT :limit",
                {"project": project_id, "limit": limit})]
        return [Decision.from_row(r) for r in self._c.rows(
            "SELECT * FROM (" + REVIEWER_DECISIONS + ") WHERE who = :who "
            "ORDER BY id DESC LIMIT :limit",
            {"project": project_id, "who": who, "limit": limit})]

    def decision_of(self, project_id: int, sample_id: int, who: str) -> Decision | None:
        """``who``'s current decision on one text (their newest not undone), or None."""
        row = self._c.one(
            "SELECT * FROM decisions WHERE project_id = :project AND sample_id = :sample "
            "AND who = :who AND action != 'undo' AND resolution = 0 "
            "AND id NOT IN (SELECT undoes FROM decisions "
            "WHERE project_id = :project AND sample_id = :sample AND undoes IS NOT NULL) "
            "ORDER BY id DESC LIMIT 1",
            {"project": project_id, "sample": sample_id, "who": who})
        return Decision.from_row(row) if row else None

    def undo_decision_id(self, project_id: int, decision_id: int, *,
                         who: str = "") -> Decision | None:
        """Undo one decision if it is still its author's current decision on that text;
        returns it, or None. The text's decision before it (if any, and not undone) becomes
        current again."""
        with self._c.atomic() as db:
            row = self._c.one(
                "SELECT * FROM (" + REVIEWER_DECISIONS + ") WHERE id = :id",
                {"project": project_id, "id": decision_id})
            if row is None:
                return None
            db["decisions"].insert(_undo_row(project_id, row, who))
        return Decision.from_row(row)


def _undo_row(project_id: int, undone: dict, who: str) -> dict:
    """The ``undo`` row that takes back the decision ``undone`` (the log keeps both)."""
    return {"project_id": project_id, "sample_id": undone["sample_id"], "action": "undo",
            "undoes": undone["id"], "who": who, "created": now()}


def _decision_row(project_id: int, sample_id: int, *, action: str, label: str | None,
                  in_candidates: bool | None = None, who: str = "", note: str = "",
                  audit: bool = False, resolution: bool = False) -> dict:
    if action not in ACTIONS:
        raise ValueError(f"action must be 'label' or 'skip', got {action!r}")
    if action == "label" and not label:
        raise ValueError("a 'label' decision needs a label")
    return {"project_id": project_id, "sample_id": sample_id, "action": action,
            "label": label if action == "label" else None,
            "in_candidates": None if in_candidates is None else int(in_candidates),
            "who": who, "note": note, "audit": int(audit), "resolution": int(resolution),
            "created": now()}
