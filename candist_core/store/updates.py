"""The continuous student's reads and its one setting (issue 13): how often the student is
updated, and how many human labels it has not seen yet. The setting lives in
``project_settings`` next to the team's (``store.team``)."""
from __future__ import annotations

from .connection import Connection

DEFAULT_UPDATE_EVERY = 50
MAX_UPDATE_EVERY = 100_000

# Label decisions that are current (the newest label/skip of their text not undone since)
# and were made in (:since, :until]. Each candidate row is checked with two index lookups
# on decisions(project_id, sample_id, id), so this stays fast at 100,000 decisions.
_NEW_LABELS = """
    SELECT COUNT(*) FROM decisions d
    WHERE d.project_id = :project AND d.action = 'label'
      AND (:since IS NULL OR d.created > :since)
      AND (:until IS NULL OR d.created <= :until)
      AND d.id = (SELECT MAX(x.id) FROM decisions x
                  WHERE x.project_id = :project AND x.sample_id = d.sample_id
                    AND x.action != 'undo'
                    AND NOT EXISTS (SELECT 1 FROM decisions u
                                    WHERE u.project_id = :project
                                      AND u.sample_id = d.sample_id AND u.undoes = x.id))
"""


class UpdatesTable:
    """``project_settings['update_every']`` and ``['teach_on_update']``, and the count of
    human labels since a run."""

    _c: Connection

    def update_every(self, project_id: int) -> int:
        """Update the student after this many new human labels (default 50; 0: never
        on its own, only on demand)."""
        value = self._c.scalar("SELECT value FROM project_settings WHERE project_id = ? "
                               "AND key = 'update_every'", [project_id])
        return DEFAULT_UPDATE_EVERY if value is None else int(value)

    def set_update_every(self, project_id: int, every: int) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or \
                not 0 <= every <= MAX_UPDATE_EVERY:
            raise ValueError(f"Update the student every 0 to {MAX_UPDATE_EVERY} decisions "
                             f"(0: only on demand), got {every!r}.")
        self._c.write("INSERT INTO project_settings (project_id, key, value) "
                      "VALUES (?, 'update_every', ?) ON CONFLICT (project_id, key) "
                      "DO UPDATE SET value = excluded.value", [project_id, str(every)])

    def teach_on_update(self, project_id: int) -> bool:
        """Whether a continuous update first teaches the offline teacher with the human
        labels (:func:`human_teacher.teach_for_update`; default on)."""
        value = self._c.scalar("SELECT value FROM project_settings WHERE project_id = ? "
                               "AND key = 'teach_on_update'", [project_id])
        return value is None or value == "1"

    def set_teach_on_update(self, project_id: int, teach: bool) -> None:
        if not isinstance(teach, bool):
            raise ValueError(f"teach_on_update is true or false, got {teach!r}.")
        self._c.write("INSERT INTO project_settings (project_id, key, value) "
                      "VALUES (?, 'teach_on_update', ?) ON CONFLICT (project_id, key) "
                      "DO UPDATE SET value = excluded.value", [project_id, "1" if teach else "0"])

    def new_human_labels(self, project_id: int, *, since: str | None,
                         until: str | None = None) -> int:
        """How many of the project's current human labels were made after ``since`` (a
        ``created`` time, e.g. a student run's; None: all) and not after ``until``. A label
        undone since does not count; a changed label counts once, as new."""
        return int(self._c.scalar(_NEW_LABELS, {"project": project_id, "since": since,
                                                "until": until}))
