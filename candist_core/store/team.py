"""Team review (issue 15): members and roles, leases on the texts reviewers have open, the
overlap that two reviewers label independently, and the reads agreement is computed from.

Leases. ``claim_next`` hands a reviewer the first text of their ranked list that is open
for them and leases it (``ttl`` seconds, renewed on each page render), all in one
``BEGIN IMMEDIATE`` transaction, so two reviewers (threads or processes) never get the same
text. A text is open for ``who`` when nobody has decided it and nobody else holds an
unexpired lease on it. Expired leases simply do not count (they are deleted lazily).

Overlap. A share of the texts (default 10 %) goes to two reviewers each, blind to each
other, so agreement can be measured. Membership is a seeded hash of the sample id:
``overlap_point(seed, sample_id) < share`` (a uniform number in [0, 1) per text), so texts
imported later join the overlap at the same share with no redraw, raising the share keeps
every text already in it, and lowering it drops the texts with the highest points.
``overlap_items`` pins texts in the overlap whatever the share: a text is pinned when a
second reviewer takes it, and lowering the share pins every text that already has two
reviewers' labels, so a share change never un-overlaps a text rated twice.

An overlap text is open for ``who`` while fewer than two reviewers have a current
(non-resolution) decision on it, ``who`` is not one of them, and fewer than two people
(deciders and other unexpired lease holders) are on it.
"""
from __future__ import annotations

import re
import time
from typing import Sequence

from ..records import Lease, Member
from .connection import Connection, now
from .decisions import CURRENT_DECISIONS, REVIEWER_DECISIONS

ROLES = ("owner", "reviewer")
DEFAULT_OVERLAP_SHARE = 0.10
MAX_OVERLAP_SHARE = 0.5
DEFAULT_TTL = 600.0
CHUNK = 500                 # ids checked per query by claim_next
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def normalise_email(email: str) -> str:
    """``email`` stripped and lowercased; ValueError when it is not an address."""
    clean = (email or "").strip().lower()
    if not clean:
        raise ValueError("An email address is needed.")
    if not _EMAIL.match(clean):
        raise ValueError(f"{email.strip()!r} is not an email address (name@domain).")
    return clean


def overlap_point(seed: int, sample_id: int) -> float:
    """A uniform number in [0, 1) for a text, fixed by (seed, sample id): the text is in
    the overlap when it is below the share (splitmix64 of the two integers)."""
    x = (seed * 0x9E3779B97F4A7C15 + sample_id + 1) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    return (x >> 11) / float(1 << 53)


class TeamTable:
    """``members``, ``leases``, ``overlap_items``, ``project_settings``."""

    _c: Connection

    # ------------------------------------------------------------------ members
    def add_member(self, project_id: int | None, email: str, role: str, *,
                   added_by: str = "") -> None:
        """Add ``email`` with ``role`` (owner or reviewer) to a project, or to the whole
        database when ``project_id`` is None (its owner); an existing member's role is
        replaced."""
        if role not in ROLES:
            raise ValueError(f"Role must be 'owner' or 'reviewer', got {role!r}.")
        if project_id is None and role != "owner":
            raise ValueError("Members of the whole database are owners; add reviewers to "
                             "a project.")
        email = normalise_email(email)
        with self._c.atomic():
            self._c.write(
                "INSERT INTO members (project_id, email, role, added_by, created) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (COALESCE(project_id, 0), email) "
                "DO UPDATE SET role = excluded.role, added_by = excluded.added_by",
                [project_id, email, role, added_by, now()])

    def remove_member(self, project_id: int | None, email: str) -> bool:
        """Remove ``email`` from a project (or from the database's owners); True if it was
        a member."""
        email = (email or "").strip().lower()
        with self._c.lock:
            cursor = self._c.db.execute(
                "DELETE FROM members WHERE COALESCE(project_id, 0) = ? AND email = ?",
                [project_id or 0, email])
            return cursor.rowcount > 0

    def members(self, project_id: int | None) -> list[Member]:
        """A project's members (or the database's owners for None), by email."""
        return [Member.from_row(r) for r in self._c.rows(
            "SELECT * FROM members WHERE COALESCE(project_id, 0) = ? ORDER BY email",
            [project_id or 0])]

    def role_of(self, project_id: int | None, email: str) -> str | None:
        """'owner' for a database owner or an owner of the project, 'reviewer' for a
        reviewer of it, else None."""
        email = (email or "").strip().lower()
        roles = {r[0] for r in self._c.tuples(
            "SELECT role FROM members WHERE email = ? AND (project_id IS NULL "
            "OR project_id = ?)", [email, project_id if project_id is not None else -1])}
        if "owner" in roles:
            return "owner"
        return "reviewer" if "reviewer" in roles else None

    def has_owner(self) -> bool:
        """Whether the database has an owner (a member with no project)."""
        return bool(self._c.scalar(
            "SELECT EXISTS (SELECT 1 FROM members WHERE project_id IS NULL)"))

    def claim_owner_if_none(self, email: str) -> bool:
        """Make ``email`` the database's owner if it has none yet (the first signed-in
        user of a new database); True if it did. Atomic across processes."""
        email = normalise_email(email)
        with self._c.atomic():
            if self.has_owner():
                return False
            self._c.write("INSERT INTO members (project_id, email, role, added_by, created) "
                          "VALUES (NULL, ?, 'owner', ?, ?)", [email, email, now()])
        return True

    # ------------------------------------------------------------------ settings
    def _setting(self, project_id: int, key: str) -> str | None:
        return self._c.scalar("SELECT value FROM project_settings WHERE project_id = ? "
                              "AND key = ?", [project_id, key])

    def _set_setting(self, project_id: int, key: str, value) -> None:
        self._c.write("INSERT INTO project_settings (project_id, key, value) VALUES (?, ?, ?) "
                      "ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value",
                      [project_id, key, str(value)])

    # ------------------------------------------------------------------ overlap
    def overlap_share(self, project_id: int) -> float:
        """The share of texts two reviewers label (default 0.10)."""
        value = self._setting(project_id, "overlap_share")
        return DEFAULT_OVERLAP_SHARE if value is None else float(value)

    def overlap_seed(self, project_id: int) -> int:
        value = self._setting(project_id, "overlap_seed")
        return 0 if value is None else int(value)

    def set_overlap_share(self, project_id: int, share: float, *, seed: int = 0) -> None:
        """Set the overlap share (0 to 0.5) and its seed. Texts that already have two
        reviewers' labels are pinned first, so they stay in the overlap."""
        if not 0.0 <= share <= MAX_OVERLAP_SHARE:
            raise ValueError(f"The overlap share must be between 0 and {MAX_OVERLAP_SHARE}, "
                             f"got {share}.")
        with self._c.atomic():
            self._c.write(
                f"INSERT OR IGNORE INTO overlap_items (project_id, sample_id) "
                f"SELECT :project, sample_id FROM ({REVIEWER_DECISIONS}) GROUP BY sample_id "
                f"HAVING COUNT(DISTINCT who) >= 2", {"project": project_id})
            self._set_setting(project_id, "overlap_share", float(share))
            self._set_setting(project_id, "overlap_seed", int(seed))

    def in_overlap(self, project_id: int, sample_id: int) -> bool:
        """Whether one text is in the overlap now (drawn by the share, or pinned)."""
        if overlap_point(self.overlap_seed(project_id), sample_id) < \
                self.overlap_share(project_id):
            return True
        return self._c.scalar("SELECT 1 FROM overlap_items WHERE project_id = ? AND "
                              "sample_id = ?", [project_id, sample_id]) is not None

    def overlap_ids(self, project_id: int) -> set[int]:
        """The sample ids in the overlap now (drawn by the share, or pinned)."""
        share, seed = self.overlap_share(project_id), self.overlap_seed(project_id)
        ids = {r[0] for r in self._c.tuples(
            "SELECT id FROM samples WHERE project_id = ?", [project_id])
            if overlap_point(seed, r[0]) < share}
        return ids | self._pinned(project_id, None)

    def _pinned(self, project_id: int, ids: Sequence[int] | None) -> set[int]:
        if ids is None:
            return {r[0] for r in self._c.tuples(
                "SELECT sample_id FROM overlap_items WHERE project_id = ?", [project_id])}
        chunk = list(ids)
        return {r[0] for r in self._c.tuples(
            f"SELECT sample_id FROM overlap_items WHERE project_id = ? "
            f"AND sample_id IN ({','.join('?' * len(chunk))})", [project_id, *chunk])}

    # ------------------------------------------------------------------ leases
    def claim_next(self, project_id: int, who: str, ordered_ids: Sequence[int], *,
                   ttl: float = DEFAULT_TTL, now: float | None = None) -> int | None:
        """Lease and return the first of ``ordered_ids`` open for ``who`` (see the module
        docstring), or the text ``who`` already holds if it is still open and listed (a
        reload resumes the same text); None when nothing is open. One transaction."""
        t = time.time() if now is None else now
        ids = ordered_ids if isinstance(ordered_ids, list) else list(ordered_ids)
        share, seed = self.overlap_share(project_id), self.overlap_seed(project_id)
        with self._c.atomic():
            self._c.write("DELETE FROM leases WHERE project_id = ? AND expires <= ?",
                          [project_id, t])
            held = [r[0] for r in self._c.tuples(
                "SELECT sample_id FROM leases WHERE project_id = ? AND who = ?",
                [project_id, who])]
            # Usually one held id: a linear search in C beats building a set of 100,000.
            held = [sid for sid in held if sid in ids]
            if held:
                held.sort(key=ids.index)
                state = self._open_states(project_id, who, held, t, share, seed)
                for sid in held:
                    if state[sid] is not None:
                        self._lease(project_id, sid, who, t + ttl, state[sid])
                        self._c.write("DELETE FROM leases WHERE project_id = ? AND who = ? "
                                      "AND sample_id != ?", [project_id, who, sid])
                        return sid
            self._c.write("DELETE FROM leases WHERE project_id = ? AND who = ?",
                          [project_id, who])
            for start in range(0, len(ids), CHUNK):
                chunk = [int(i) for i in ids[start:start + CHUNK]]
                state = self._open_states(project_id, who, chunk, t, share, seed)
                for sid in chunk:
                    if state[sid] is not None:
                        self._lease(project_id, sid, who, t + ttl, state[sid])
                        return sid
        return None

    def _lease(self, project_id: int, sample_id: int, who: str, expires: float,
               second: bool) -> None:
        self._c.write("INSERT INTO leases (project_id, sample_id, who, expires, created) "
                      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, sample_id, who) "
                      "DO UPDATE SET expires = excluded.expires",
                      [project_id, sample_id, who, expires, now()])
        if second:   # the second reviewer of an overlap text: keep it in the overlap
            self._c.write("INSERT OR IGNORE INTO overlap_items (project_id, sample_id) "
                          "VALUES (?, ?)", [project_id, sample_id])

    def _open_states(self, project_id: int, who: str, chunk: list[int], t: float,
                     share: float, seed: int) -> dict[int, bool | None]:
        """sample id -> None when it is not open for ``who``, else whether ``who`` would
        be the second person on it (an overlap text). Two index lookups per chunk: the
        decision rows of the chunk (an undo row sits on the sample it undoes) and the
        other people's unexpired leases."""
        rows = self._c.tuples(
            f"SELECT sample_id, id, action, undoes, who, resolution FROM decisions "
            f"WHERE project_id = ? AND sample_id IN ({','.join('?' * len(chunk))})", [project_id, *chunk])
        holders: dict[int, set[str]] = {}
        for sid, holder in self._c.tuples(
                f"SELECT sample_id, who FROM leases WHERE project_id = ? AND expires > ? "
                f"AND who != ? AND sample_id IN ({','.join('?' * len(chunk))})", [project_id, t, who, *chunk]):
            holders.setdefault(sid, set()).add(holder)
        by_sample: dict[int, list[tuple]] = {}
        for r in rows:
            by_sample.setdefault(r[0], []).append(r)
        pinned = self._pinned(project_id, chunk) if (by_sample or holders) else set()
        out: dict[int, bool | None] = {}
        for sid in chunk:
            decisions = by_sample.get(sid, ())
            undone = {r[3] for r in decisions if r[2] == "undo"}
            live = [r for r in decisions if r[2] != "undo" and r[1] not in undone]
            others = holders.get(sid, set())
            if not live and not others:
                out[sid] = False
                continue
            overlap = sid in pinned or overlap_point(seed, sid) < share
            if not overlap or any(r[5] for r in live):
                out[sid] = None
                continue
            deciders = {r[4] for r in live}
            people = deciders | others
            if len(deciders) >= 2 or who in deciders or len(people) >= 2:
                out[sid] = None
            else:
                out[sid] = True
        return out

    def renew_lease(self, project_id: int, sample_id: int, who: str, *,
                    ttl: float = DEFAULT_TTL) -> bool:
        """Extend ``who``'s unexpired lease on a text; False when there is none (it expired
        or was released)."""
        t = time.time()
        with self._c.lock:
            cursor = self._c.db.execute(
                "UPDATE leases SET expires = ? WHERE project_id = ? AND sample_id = ? "
                "AND who = ? AND expires > ?", [t + ttl, project_id, sample_id, who, t])
            return cursor.rowcount > 0

    def release_lease(self, project_id: int, sample_id: int, who: str) -> None:
        self._c.write("DELETE FROM leases WHERE project_id = ? AND sample_id = ? AND who = ?",
                      [project_id, sample_id, who])

    def release_leases(self, project_id: int, who: str) -> None:
        """Let go of every text ``who`` holds (texts sent to review then come first for
        them, instead of the one left open)."""
        self._c.write("DELETE FROM leases WHERE project_id = ? AND who = ?", [project_id, who])

    def active_leases(self, project_id: int, *, now: float | None = None) -> list[Lease]:
        """Unexpired leases of a project (at ``now``, unix seconds), soonest to expire
        first."""
        t = time.time() if now is None else now
        return [Lease(*r) for r in self._c.tuples(
            "SELECT project_id, sample_id, who, expires, created FROM leases "
            "WHERE project_id = ? AND expires > ? ORDER BY expires, sample_id", [project_id, t])]

    # ------------------------------------------------------------------ agreement reads
    def rater_labels(self, project_id: int) -> list[tuple[int, str, str]]:
        """(sample id, who, label) per (sample, who): the newest decision of ``who`` on the
        text that is not undone and not a resolution, when it is a label."""
        return [tuple(r) for r in self._c.tuples(
            f"SELECT sample_id, who, label FROM ({REVIEWER_DECISIONS}) WHERE action = 'label' "
            f"ORDER BY sample_id, who", {"project": project_id})]

    def rater_decision_times(self, project_id: int) -> list[tuple[str, str]]:
        """(who, created) of every label or skip that is not a resolution, oldest first:
        what decisions per hour are computed from (undone ones count: the work was done)."""
        return [tuple(r) for r in self._c.tuples(
            "SELECT who, created FROM decisions WHERE project_id = ? AND action != 'undo' "
            "AND resolution = 0 ORDER BY id", [project_id])]

    def resolutions(self, project_id: int) -> dict[int, str]:
        """sample id -> label of the resolutions that are the text's current decision."""
        return {r[0]: r[1] for r in self._c.tuples(
            f"SELECT sample_id, label FROM ({CURRENT_DECISIONS}) WHERE resolution = 1",
            {"project": project_id})}

    def resolve(self, project_id: int, sample_id: int, label: str, *, who: str) -> int:
        """Record an owner's resolution of a conflict: the text's newest decision, so the
        export uses it; never counted as a rater. ValueError for a label not in the
        project."""
        if label not in self.label_schema(project_id).names:
            raise ValueError(f"{label!r} is not a label of this project.")
        return self.record_decision(project_id, sample_id, action="label", label=label,
                                    who=who, resolution=True)
