"""The Data page's sample browser: full-text search (FTS5) and filters over every sample of
a project, with the label the export would give it, one SQL-paged query."""
from __future__ import annotations

import re

from .connection import Connection
from .decisions import CURRENT_DECISIONS

# Each sample with the label and label source of the default export policy (a human label,
# else the latest finished student run, else the latest teacher run's single label).
BROWSE_ROWS = """
    SELECT s.id AS sample_id, s.ext_id AS id, s.text AS text,
           CASE WHEN cur.action = 'label' THEN cur.label
                WHEN p.label IS NOT NULL THEN p.label ELSE a.label END AS label,
           CASE WHEN cur.action = 'label' THEN 'human'
                WHEN p.label IS NOT NULL THEN 'student'
                WHEN a.label IS NOT NULL THEN 'teacher' ELSE 'none' END AS source,
           a.candidates AS candidates, cur.action AS decision, s.gold AS gold
    FROM samples s
    LEFT JOIN cur ON cur.sample_id = s.id
    LEFT JOIN predictions p ON p.sample_id = s.id AND p.run_id = :student
    LEFT JOIN annotations a ON a.sample_id = s.id AND a.run_id = :teacher
    WHERE s.project_id = :project
"""
SEARCH_CLAUSE = " AND s.id IN (SELECT rowid FROM samples_fts WHERE samples_fts MATCH :search)"
# Filter name -> its condition on the rows above.
BROWSE_FILTERS = {
    "label": " AND label = :label",
    "source": " AND source = :source",
    "decided": " AND (decision IS NOT NULL) = :decided",
    "set_size": " AND COALESCE(json_array_length(candidates), 0) = :set_size",
}
SOURCES = ("human", "student", "teacher", "none")


def fts_query(text: str) -> str | None:
    """A user's words as an FTS5 query: every word must occur (the last one as a prefix,
    so results come while typing); operators and quotes in the input are plain text."""
    words = re.findall(r"\w+", text or "")
    if not words:
        return None
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


class SampleBrowser:
    """``browse_samples``: the mixin of :class:`Store` behind the Data page's table."""

    _c: Connection

    def browse_samples(self, project_id: int, *, search: str | None = None,
                       label: str | None = None, source: str | None = None,
                       decided: bool | None = None, set_size: int | None = None,
                       limit: int = 50, offset: int = 0) -> list[dict]:
        """One page of the matching samples in import order, as table rows: ``sample_id``,
        ``id``, ``text``, ``label``, ``source`` (human, student, teacher or none),
        ``candidates`` (JSON list), ``decision`` (label, skip or None), ``gold``.

        ``search``: words that must all occur (:func:`fts_query`); ``label``/``source``:
        of the default export policy; ``decided``: has a current human decision;
        ``set_size``: labels in the latest teacher run's candidate set (0: none).
        """
        sql, params = self._browse_query(project_id, search=search, label=label,
                                         source=source, decided=decided, set_size=set_size)
        return self._c.rows(sql + " ORDER BY sample_id LIMIT :limit OFFSET :offset",
                            {**params, "limit": limit, "offset": offset})

    def count_browse(self, project_id: int, **filters) -> int:
        """How many samples :meth:`browse_samples` would page through."""
        sql, params = self._browse_query(project_id, **filters)
        return self._c.scalar("SELECT COUNT(*) FROM (" + sql + ")", params)

    def _browse_query(self, project_id: int, *, search: str | None = None,
                      label: str | None = None, source: str | None = None,
                      decided: bool | None = None, set_size: int | None = None
                      ) -> tuple[str, dict]:
        if source is not None and source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        teacher, student = self._latest_run_ids(project_id)
        params = {"project": project_id, "teacher": teacher, "student": student,
                  "search": fts_query(search or ""), "label": label, "source": source,
                  "decided": None if decided is None else int(decided),
                  "set_size": set_size}
        inner = BROWSE_ROWS + (SEARCH_CLAUSE if params["search"] else "")
        where = "".join(clause for name, clause in BROWSE_FILTERS.items()
                        if params[name] is not None)
        return ("WITH cur AS (" + CURRENT_DECISIONS + ") SELECT * FROM (" + inner
                + ") WHERE 1" + where), params
