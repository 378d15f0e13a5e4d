"""The SQLite connection: pragmas, the lock, transactions and schema migrations.

Every write that records paid-for work (LLM replies) or human work (review decisions)
commits before the method returns, so a crash right after loses nothing that was reported
as saved. The connection runs in autocommit mode; multi-statement writes go through
:meth:`Connection.atomic` (``BEGIN IMMEDIATE``, so two processes never both plan a write on
stale reads). sqlite-utils' table writes nest inside it as savepoints. One re-entrant lock
serialises use of the connection, so a store can be shared between Streamlit sessions and
a training thread.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from ..records import ProjectError


MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        task TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL
    );
    CREATE TABLE labels (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        position INTEGER NOT NULL,
        UNIQUE (project_id, name)
    );
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        ext_id TEXT NOT NULL,
        text TEXT NOT NULL,
        gold TEXT,
        meta TEXT,
        UNIQUE (project_id, ext_id)
    );
    CREATE TABLE teacher_runs (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        teacher TEXT NOT NULL,
        model TEXT NOT NULL,
        strategy TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        created TEXT NOT NULL,
        updated INTEGER NOT NULL,
        finished TEXT,
        summary TEXT
    );
    CREATE TABLE annotations (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES teacher_runs(id) ON DELETE CASCADE,
        sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
        candidates TEXT,
        label TEXT,
        confidence REAL,
        raw TEXT,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        latency_ms REAL,
        error_kind TEXT,
        error TEXT,
        cache_key TEXT,
        created TEXT NOT NULL,
        UNIQUE (run_id, sample_id)
    );
    CREATE INDEX annotations_sample ON annotations(sample_id);
    CREATE TABLE llm_cache (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        reply TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
        action TEXT NOT NULL CHECK (action IN ('label', 'skip', 'undo')),
        label TEXT,
        in_candidates INTEGER,
        undoes INTEGER REFERENCES decisions(id),
        who TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL
    );
    CREATE INDEX decisions_sample ON decisions(project_id, sample_id, id);
    CREATE TABLE student_runs (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        teacher_run_id INTEGER REFERENCES teacher_runs(id) ON DELETE SET NULL,
        method TEXT NOT NULL,
        config TEXT NOT NULL,
        status TEXT NOT NULL,
        created TEXT NOT NULL,
        finished TEXT,
        epochs TEXT NOT NULL DEFAULT '[]',
        best_epoch INTEGER,
        checkpoint TEXT,
        error TEXT,
        worker TEXT
    );
    CREATE TABLE predictions (
        run_id INTEGER NOT NULL REFERENCES student_runs(id) ON DELETE CASCADE,
        sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
        probs BLOB NOT NULL,
        label TEXT NOT NULL,
        confidence REAL NOT NULL,
        entropy REAL NOT NULL DEFAULT 0,
        out_of_candidate INTEGER NOT NULL DEFAULT 0,
        high_confidence INTEGER NOT NULL DEFAULT 0,
        small_loss INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, sample_id)
    );
    CREATE INDEX predictions_confidence ON predictions(run_id, confidence);
    """,
    # teacher_runs.updated was never a time: it is the order in which runs were last
    # started or resumed (the latest-used run is the one the student and export read).
    2: """
    ALTER TABLE teacher_runs RENAME COLUMN updated TO use_order;
    """,
    # The audit (issue 12): a uniformly random, seeded sample of texts labeled blind.
    # decisions.audit marks the decisions made in the audit (the unbiased sample every
    # quality estimate uses); audit_samples is the drawn sample in draw order.
    3: """
    ALTER TABLE decisions ADD COLUMN audit INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE audit_samples (
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (project_id, sample_id),
        UNIQUE (project_id, position)
    );
    """,
    # The Data page's full-text search (an external-content FTS5 index over samples.text,
    # kept in step by triggers) and the reviewer's fixed keys, one per label of a project
    # (kept apart from ``labels`` so that replacing the labels keeps the keys of the names
    # that stay).
    4: """
    CREATE VIRTUAL TABLE samples_fts USING fts5(
        text, content='samples', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER samples_fts_insert AFTER INSERT ON samples BEGIN
        INSERT INTO samples_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER samples_fts_delete AFTER DELETE ON samples BEGIN
        INSERT INTO samples_fts(samples_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TRIGGER samples_fts_update AFTER UPDATE OF text ON samples BEGIN
        INSERT INTO samples_fts(samples_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO samples_fts(rowid, text) VALUES (new.id, new.text);
    END;
    INSERT INTO samples_fts(samples_fts) VALUES ('rebuild');
    CREATE TABLE label_keys (
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (project_id, label),
        UNIQUE (project_id, key)
    );
    """,
    # Team review (issue 15). members: who may do what (project_id NULL = the whole
    # database, its owner). leases: the text a reviewer has open, so two reviewers never
    # get the same one (expires in unix seconds; expired rows simply do not count).
    # overlap_items: texts pinned in the overlap whatever the share (the overlap itself is
    # a seeded hash of the sample id, store/team.py); project_settings: per-project values
    # such as the overlap share. decisions.resolution marks an owner's resolution of a
    # conflict (the newest decision, so it is current; never counted as a rater).
    5: """
    CREATE TABLE members (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NULL REFERENCES projects(id) ON DELETE CASCADE,
        email TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('owner', 'reviewer')),
        added_by TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL
    );
    CREATE UNIQUE INDEX members_unique ON members(COALESCE(project_id, 0), email);
    CREATE TABLE leases (
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
        who TEXT NOT NULL,
        expires REAL NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (project_id, sample_id, who)
    );
    CREATE INDEX leases_who ON leases(project_id, who);
    CREATE TABLE overlap_items (
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
        PRIMARY KEY (project_id, sample_id)
    );
    CREATE TABLE project_settings (
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (project_id, key)
    );
    ALTER TABLE decisions ADD COLUMN resolution INTEGER NOT NULL DEFAULT 0;
    """,
    # The learning loop (issue 13), both from out-of-sample probabilities (NULL for runs
    # made before): cleanlab's label-quality score of the teacher's label (lower: more
    # likely a teacher mistake; NULL without a teacher label) and the probability of the
    # student's own label (lower: the exported label is more likely wrong).
    6: """
    ALTER TABLE predictions ADD COLUMN label_issue REAL;
    ALTER TABLE predictions ADD COLUMN oos_confidence REAL;
    """,
}
SCHEMA_VERSION = max(MIGRATIONS)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Connection:
    """One SQLite file opened for CanDist: WAL, foreign keys, migrated to SCHEMA_VERSION."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=timeout, check_same_thread=False,
                               isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self.lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        self.migrate()

    def close(self) -> None:
        with self.lock:
            self.db.conn.close()

    @contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction taken up front (``BEGIN IMMEDIATE``); rolled back on error."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def rows(self, sql: str, params: Any = ()) -> list[dict]:
        with self.lock:
            return list(self.db.query(sql, params))

    def one(self, sql: str, params: Any = ()) -> dict | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Any = ()) -> Any:
        with self.lock:
            row = self.db.execute(sql, params).fetchone()
        return row[0] if row else None

    def tuples(self, sql: str, params: Any = ()) -> list[tuple]:
        """Plain tuples: for the wide, text-free reads of 100,000 rows (no dict per row)."""
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    def write(self, sql: str, params: Any = ()) -> int:
        """One statement, committed on return (autocommit); returns lastrowid."""
        with self.lock:
            return self.db.execute(sql, params).lastrowid

    def table(self, name: str) -> sqlite_utils.db.Table:
        return self.db.table(name)

    @property
    def schema_version(self) -> int:
        return self.scalar("PRAGMA user_version")

    def migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION in one transaction; refuse newer files."""
        with self.atomic():
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise ProjectError(
                    f"{self.path} was written by a newer CanDist Studio (schema "
                    f"{version} > {SCHEMA_VERSION}); upgrade the app to open it.")
            for target in sorted(t for t in MIGRATIONS if version < t <= SCHEMA_VERSION):
                for statement in _split_sql(MIGRATIONS[target]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={target}")

    def integrity_check(self) -> str:
        return self.scalar("PRAGMA integrity_check")


def _split_sql(script: str) -> list[str]:
    """The statements of a script; a trigger's ``BEGIN ... END`` body stays whole."""
    statements, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip().rstrip(";").strip())
            pending = ""
    return statements
