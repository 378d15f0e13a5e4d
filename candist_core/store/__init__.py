"""The store: the only package that talks to SQLite.

:class:`Store` is the one object the rest of the app holds. Its methods come from one module
per noun, each owning its tables (``projects``: projects, labels and samples;
``teacher_runs``: teacher runs, annotations and the LLM reply cache; ``decisions``;
``student_runs``: student runs and predictions; ``team``: members, leases and the
overlap; ``updates``: the continuous student's setting and count) plus ``queries`` for
the screen-shaped reads that join them. ``connection`` holds the connection, its lock, transactions and migrations.
Reads return the frozen records of :mod:`candist_core.records`.
"""
from __future__ import annotations

from pathlib import Path

from .audits import AuditsTable
from .browse import SOURCES, SampleBrowser
from .connection import SCHEMA_VERSION, Connection, now
from .decisions import DecisionsTable
from .label_keys import LabelKeysTable
from .page_settings import PageSettingsTable
from .sent_to_review import SentToReviewTable
from .projects import ProjectsTable, SamplesTable, validate_project_name
from .queries import PREDICTION_FILTERS, PREDICTION_ORDERS, Queries
from .student_runs import StudentRunsTable
from .teacher_runs import ReplyCacheTable, TeacherRunsTable
from .team import TeamTable
from .updates import UpdatesTable

__all__ = ["Store", "SCHEMA_VERSION", "PREDICTION_FILTERS", "PREDICTION_ORDERS", "SOURCES",
           "validate_project_name", "now"]


class Store(ProjectsTable, SamplesTable, TeacherRunsTable, ReplyCacheTable, DecisionsTable,
            StudentRunsTable, Queries, LabelKeysTable, SampleBrowser, AuditsTable,
            TeamTable, UpdatesTable, PageSettingsTable, SentToReviewTable):
    """A CanDist database file. Open with ``Store(path)``; safe to share between threads."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0):
        self._c = Connection(path, timeout=timeout)

    @property
    def path(self) -> Path:
        return self._c.path

    @property
    def db(self):
        """The sqlite-utils Database (for tests and one-off maintenance, not app code)."""
        return self._c.db

    @property
    def schema_version(self) -> int:
        return self._c.schema_version

    def integrity_check(self) -> str:
        return self._c.integrity_check()

    def close(self) -> None:
        self._c.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
