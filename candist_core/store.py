"""The one module that talks to SQLite.

Every write that records paid-for work (LLM replies) or human work (review decisions)
commits before the method returns, so a crash right after loses nothing that was
reported as saved. The connection runs in autocommit mode; multi-statement writes go
through :meth:`Store._atomic` (``BEGIN IMMEDIATE``). One lock serialises use of the
connection so a store can be shared between Streamlit sessions and a training thread.
"""
from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import sqlite_utils

from .records import Label, LabelSchema, Project, ProjectError, Sample

SCHEMA_VERSION = 1

_PROJECT_NAME = re.compile(r"^[\w][\w .\-]{0,99}$")

_MIGRATIONS: dict[int, str] = {
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
        updated INTEGER NOT NULL,   -- use order: raised each time the run is (re)started
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
}

# A decision row that is the current one: the newest label/skip not undone since.
_CURRENT_DECISIONS = """
    SELECT d.sample_id, d.action, d.label, d.in_candidates, d.id
    FROM decisions d
    JOIN (SELECT sample_id, MAX(id) AS id FROM decisions
          WHERE project_id = :project AND action != 'undo'
            AND id NOT IN (SELECT undoes FROM decisions
                           WHERE project_id = :project AND undoes IS NOT NULL)
          GROUP BY sample_id) latest ON latest.id = d.id
"""


_NEXT_USE = "(SELECT COALESCE(MAX(updated), 0) + 1 FROM teacher_runs)"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def validate_project_name(name: str) -> str:
    """Project names appear in paths (checkpoints, exports): keep them plain."""
    name = (name or "").strip()
    if not name:
        raise ProjectError("A project name cannot be empty.")
    if "/" in name or "\\" in name or ".." in name or not _PROJECT_NAME.match(name):
        raise ProjectError(
            f"Project name {name!r} is not allowed: use letters, digits, spaces, '.', '-' "
            f"or '_' (at most 100 characters, no path separators and no '..').")
    return name


class Store:
    """A CanDist database file. Open with ``Store(path)``; safe to share between threads."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=timeout, check_same_thread=False,
                               isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        self._migrate()

    # ---------------------------------------------------------------- plumbing
    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _rows(self, sql: str, params: Any = ()) -> list[dict]:
        with self._lock:
            return list(self.db.query(sql, params))

    def _one(self, sql: str, params: Any = ()) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _write(self, sql: str, params: Any = ()) -> int:
        """One statement, committed on return (autocommit); returns lastrowid."""
        with self._lock:
            return self.db.execute(sql, params).lastrowid

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        with self._atomic():
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise ProjectError(
                    f"{self.path} was written by a newer CanDist Studio (schema "
                    f"{version} > {SCHEMA_VERSION}); upgrade the app to open it.")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _split_sql(_MIGRATIONS[target]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={target}")

    def integrity_check(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]

    # ---------------------------------------------------------------- projects
    def create_project(self, name: str, schema: LabelSchema) -> Project:
        name = validate_project_name(name)
        with self._atomic():
            if self._one("SELECT id FROM projects WHERE name = ?", [name]):
                raise ProjectError(f"Project {name!r} already exists in {self.path}.")
            created = now()
            pid = self.db.execute("INSERT INTO projects (name, task, created) VALUES (?,?,?)",
                                  [name, schema.task, created]).lastrowid
            self._insert_labels(pid, schema.labels)
        return Project(pid, name, schema.task, created)

    def _insert_labels(self, project_id: int, labels: Iterable[Label]) -> None:
        self.db.conn.executemany(
            "INSERT INTO labels (project_id, name, description, position) VALUES (?,?,?,?)",
            [(project_id, l.name, l.description, i) for i, l in enumerate(labels)])

    def get_project(self, name: str) -> Project:
        row = self._one("SELECT * FROM projects WHERE name = ?", [name])
        if row is None:
            known = [p.name for p in self.list_projects()]
            hint = f" Known projects: {', '.join(known)}." if known else (
                " The database has no project yet: run 'init' first.")
            raise ProjectError(f"No project named {name!r} in {self.path}.{hint}")
        return Project(row["id"], row["name"], row["task"], row["created"])

    def list_projects(self) -> list[Project]:
        return [Project(r["id"], r["name"], r["task"], r["created"])
                for r in self._rows("SELECT * FROM projects ORDER BY id")]

    def label_schema(self, project_id: int) -> LabelSchema:
        task = self._one("SELECT task FROM projects WHERE id = ?", [project_id])["task"]
        labels = self._rows("SELECT name, description FROM labels WHERE project_id = ? "
                            "ORDER BY position", [project_id])
        return LabelSchema(task, tuple(Label(r["name"], r["description"]) for r in labels))

    def labels_in_use(self, project_id: int) -> set[str]:
        """Labels that annotations, decisions or predictions refer to."""
        used = set()
        for row in self._rows(
                "SELECT a.candidates FROM annotations a JOIN teacher_runs t ON t.id = a.run_id "
                "WHERE t.project_id = ? AND a.candidates IS NOT NULL", [project_id]):
            used.update(json.loads(row["candidates"]))
        used.update(r["label"] for r in self._rows(
            "SELECT DISTINCT label FROM decisions WHERE project_id = ? AND label IS NOT NULL",
            [project_id]))
        used.update(r["label"] for r in self._rows(
            "SELECT DISTINCT p.label FROM predictions p JOIN student_runs s ON s.id = p.run_id "
            "WHERE s.project_id = ?", [project_id]))
        return used

    def replace_labels(self, project_id: int, schema: LabelSchema) -> None:
        """Replace task and labels; callers check :meth:`labels_in_use` first."""
        with self._atomic():
            self.db.execute("UPDATE projects SET task = ? WHERE id = ?", [schema.task, project_id])
            self.db.execute("DELETE FROM labels WHERE project_id = ?", [project_id])
            self._insert_labels(project_id, schema.labels)

    # ----------------------------------------------------------------- samples
    def existing_ext_ids(self, project_id: int) -> set[str]:
        with self._lock:
            cur = self.db.execute("SELECT ext_id FROM samples WHERE project_id = ?",
                                  [project_id])
            return {r[0] for r in cur}

    def insert_samples(self, project_id: int, rows: list[tuple[str, str, str | None]]) -> int:
        """Insert ``(ext_id, text, gold)`` rows in one transaction; existing ids are kept."""
        with self._atomic():
            before = self.db.conn.total_changes
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO samples (project_id, ext_id, text, gold) "
                "VALUES (?,?,?,?)", [(project_id, e, t, g) for e, t, g in rows])
            return self.db.conn.total_changes - before

    def gold_labels(self, project_id: int) -> dict[int, str]:
        """sample id -> gold label, for the samples that have one."""
        with self._lock:
            return dict(self.db.execute("SELECT id, gold FROM samples WHERE project_id = ? "
                                        "AND gold IS NOT NULL", [project_id]).fetchall())

    def has_gold(self, project_id: int) -> bool:
        return self._one("SELECT EXISTS (SELECT 1 FROM samples WHERE project_id = ? AND "
                         "gold IS NOT NULL) AS g", [project_id])["g"] == 1

    def text_stats(self, project_id: int, *, limit: int | None = None) -> tuple[int, float]:
        """(number of samples, mean text length in characters) of the first ``limit``."""
        row = self._one("SELECT COUNT(*) AS n, AVG(LENGTH(text)) AS chars FROM (SELECT text "
                        "FROM samples WHERE project_id = ? ORDER BY id LIMIT ?)",
                        [project_id, -1 if limit is None else limit])
        return row["n"], row["chars"] or 0.0

    def annotation_summary(self, run_id: int) -> list[dict]:
        """Candidates, label, error kind and gold of every row of a run (no texts)."""
        rows = self._rows("SELECT a.sample_id, a.candidates, a.label, a.error_kind, s.gold "
                          "FROM annotations a JOIN samples s ON s.id = a.sample_id "
                          "WHERE a.run_id = ? ORDER BY a.sample_id", [run_id])
        for r in rows:
            r["candidates"] = json.loads(r["candidates"]) if r["candidates"] else None
        return rows

    def count_samples(self, project_id: int) -> int:
        return self._one("SELECT COUNT(*) AS n FROM samples WHERE project_id = ?",
                         [project_id])["n"]

    def samples(self, project_id: int, *, ids: Iterable[int] | None = None,
                limit: int | None = None, offset: int = 0) -> list[Sample]:
        if ids is not None:
            ids = list(ids)
            out: dict[int, Sample] = {}
            for start in range(0, len(ids), 900):
                chunk = ids[start:start + 900]
                marks = ",".join("?" * len(chunk))
                for r in self._rows(f"SELECT id, ext_id, text, gold FROM samples WHERE "
                                    f"project_id = ? AND id IN ({marks})",
                                    [project_id, *chunk]):
                    out[r["id"]] = Sample(r["id"], r["ext_id"], r["text"], r["gold"])
            return [out[i] for i in ids if i in out]
        sql = "SELECT id, ext_id, text, gold FROM samples WHERE project_id = ? ORDER BY id"
        params: list[Any] = [project_id]
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [Sample(r["id"], r["ext_id"], r["text"], r["gold"])
                for r in self._rows(sql, params)]

    # ----------------------------------------------------------------- teacher
    def create_teacher_run(self, project_id: int, *, teacher: str, model: str,
                           strategy: str, params: dict) -> int:
        return self._write(
            "INSERT INTO teacher_runs (project_id, teacher, model, strategy, params, status, "
            f"created, updated) VALUES (?,?,?,?,?,?,?,{_NEXT_USE})",
            [project_id, teacher, model, strategy, json.dumps(params, sort_keys=True),
             "running", now()])

    def find_teacher_run(self, project_id: int, *, teacher: str, model: str, strategy: str,
                         params: dict) -> int | None:
        """The newest run with exactly these settings (used to resume)."""
        row = self._one(
            "SELECT id FROM teacher_runs WHERE project_id = ? AND teacher = ? AND model = ? "
            "AND strategy = ? AND params = ? ORDER BY id DESC LIMIT 1",
            [project_id, teacher, model, strategy, json.dumps(params, sort_keys=True)])
        return row["id"] if row else None

    def set_teacher_run_status(self, run_id: int, status: str,
                               summary: dict | None = None) -> None:
        self._write("UPDATE teacher_runs SET status = ?, summary = ?, finished = ?"
                    + (f", updated = {_NEXT_USE}" if status == "running" else "")
                    + " WHERE id = ?",
                    [status, json.dumps(summary) if summary is not None else None,
                     now() if status != "running" else None, run_id])

    def teacher_run(self, run_id: int) -> dict:
        row = self._one("SELECT * FROM teacher_runs WHERE id = ?", [run_id])
        if row is None:
            raise ProjectError(f"No teacher run #{run_id}.")
        return _decode_run(row)

    def teacher_runs(self, project_id: int) -> list[dict]:
        """Newest use first."""
        return [_decode_run(r) for r in self._rows(
            "SELECT * FROM teacher_runs WHERE project_id = ? ORDER BY updated DESC, id DESC",
            [project_id])]

    def latest_teacher_run(self, project_id: int) -> dict | None:
        """The most recently used run (a resumed run counts as new) with annotations."""
        row = self._one(
            "SELECT t.* FROM teacher_runs t WHERE t.project_id = ? AND EXISTS "
            "(SELECT 1 FROM annotations a WHERE a.run_id = t.id AND a.candidates IS NOT NULL) "
            "ORDER BY t.updated DESC, t.id DESC LIMIT 1", [project_id])
        return _decode_run(row) if row else None

    def record_annotation(self, run_id: int, sample_id: int, *, candidates: list[str] | None,
                          label: str | None, confidence: float | None, raw: str | None,
                          prompt_tokens: int = 0, completion_tokens: int = 0,
                          latency_ms: float | None = None, error_kind: str | None = None,
                          error: str | None = None, cache_key: str | None = None) -> None:
        """Upsert one sample's result; a success replaces an earlier error row."""
        self._write(
            "INSERT INTO annotations (run_id, sample_id, candidates, label, confidence, raw, "
            "prompt_tokens, completion_tokens, latency_ms, error_kind, error, cache_key, "
            "created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (run_id, sample_id) DO UPDATE SET candidates = excluded.candidates, "
            "label = excluded.label, confidence = excluded.confidence, raw = excluded.raw, "
            "prompt_tokens = excluded.prompt_tokens, "
            "completion_tokens = excluded.completion_tokens, "
            "latency_ms = excluded.latency_ms, error_kind = excluded.error_kind, "
            "error = excluded.error, cache_key = excluded.cache_key, created = excluded.created",
            [run_id, sample_id, json.dumps(candidates) if candidates is not None else None,
             label, confidence, raw, prompt_tokens, completion_tokens, latency_ms, error_kind,
             error, cache_key, now()])

    def record_annotations(self, run_id: int, rows: list[dict]) -> None:
        """Bulk form of :meth:`record_annotation` for local teachers (one transaction)."""
        with self._atomic():
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO annotations (run_id, sample_id, candidates, label, "
                "confidence, raw, created) VALUES (?,?,?,?,?,?,?)",
                [(run_id, r["sample_id"], json.dumps(r["candidates"]), r["label"],
                  r.get("confidence"), r.get("raw"), now()) for r in rows])

    def done_sample_ids(self, run_id: int) -> set[int]:
        """Samples of a run that have a successful (non-error) annotation."""
        with self._lock:
            return {r[0] for r in self.db.execute(
                "SELECT sample_id FROM annotations WHERE run_id = ? AND error_kind IS NULL",
                [run_id])}

    def annotations(self, run_id: int, *, errors_only: bool = False) -> list[dict]:
        sql = ("SELECT a.*, s.ext_id, s.text, s.gold FROM annotations a "
               "JOIN samples s ON s.id = a.sample_id WHERE a.run_id = ?")
        if errors_only:
            sql += " AND a.error_kind IS NOT NULL"
        rows = self._rows(sql + " ORDER BY a.sample_id", [run_id])
        for r in rows:
            r["candidates"] = json.loads(r["candidates"]) if r["candidates"] else None
        return rows

    def cache_get(self, key: str) -> dict | None:
        row = self._one("SELECT reply FROM llm_cache WHERE key = ?", [key])
        return json.loads(row["reply"]) if row else None

    def cache_put(self, key: str, model: str, reply: dict) -> None:
        self._write("INSERT OR REPLACE INTO llm_cache (key, model, reply, created) "
                    "VALUES (?,?,?,?)", [key, model, json.dumps(reply), now()])

    # --------------------------------------------------------------- decisions
    def record_decision(self, project_id: int, sample_id: int, *, action: str,
                        label: str | None = None, in_candidates: bool | None = None,
                        who: str = "", note: str = "") -> int:
        """Append a human decision (``label`` or ``skip``); committed on return."""
        if action not in ("label", "skip"):
            raise ValueError(f"action must be 'label' or 'skip', got {action!r}")
        if action == "label" and not label:
            raise ValueError("a 'label' decision needs a label")
        return self._write(
            "INSERT INTO decisions (project_id, sample_id, action, label, in_candidates, who, "
            "note, created) VALUES (?,?,?,?,?,?,?,?)",
            [project_id, sample_id, action, label if action == "label" else None,
             None if in_candidates is None else int(in_candidates), who, note, now()])

    def undo_decision(self, project_id: int, *, who: str = "") -> dict | None:
        """Undo the newest still-current decision of ``who``; returns it, or None."""
        with self._atomic():
            row = self._one(
                "SELECT * FROM decisions WHERE project_id = ? AND who = ? AND action != 'undo' "
                "AND id NOT IN (SELECT undoes FROM decisions WHERE project_id = ? "
                "AND undoes IS NOT NULL) ORDER BY id DESC LIMIT 1",
                [project_id, who, project_id])
            if row is None:
                return None
            self.db.execute(
                "INSERT INTO decisions (project_id, sample_id, action, undoes, who, created) "
                "VALUES (?,?,?,?,?,?)",
                [project_id, row["sample_id"], "undo", row["id"], who, now()])
        return row

    def current_decisions(self, project_id: int) -> dict[int, dict]:
        """sample id -> the current decision (``action``, ``label``, ``in_candidates``)."""
        return {r["sample_id"]: r for r in self._rows(_CURRENT_DECISIONS,
                                                      {"project": project_id})}

    def decision_log(self, project_id: int, *, limit: int = 100) -> list[dict]:
        return self._rows("SELECT * FROM decisions WHERE project_id = ? ORDER BY id DESC "
                          "LIMIT ?", [project_id, limit])

    # ----------------------------------------------------------------- student
    def create_student_run(self, project_id: int, *, teacher_run_id: int | None, method: str,
                           config: dict) -> int:
        """A run marked 'running' by this process (its pid, to tell a dead run later)."""
        return self._write(
            "INSERT INTO student_runs (project_id, teacher_run_id, method, config, status, "
            "created, worker) VALUES (?,?,?,?,?,?,?)",
            [project_id, teacher_run_id, method, json.dumps(config, sort_keys=True), "running",
             now(), _worker_id()])

    def record_student_epoch(self, run_id: int, metrics: dict) -> None:
        with self._atomic():
            row = self._one("SELECT epochs FROM student_runs WHERE id = ?", [run_id])
            epochs = json.loads(row["epochs"]) + [metrics]
            self.db.execute("UPDATE student_runs SET epochs = ? WHERE id = ?",
                            [json.dumps(epochs), run_id])

    def finish_student_run(self, run_id: int, *, status: str, best_epoch: int | None = None,
                           checkpoint: str | None = None, error: str | None = None) -> None:
        self._write("UPDATE student_runs SET status = ?, best_epoch = ?, checkpoint = ?, "
                    "error = ?, finished = ? WHERE id = ?",
                    [status, best_epoch, checkpoint, error, now(), run_id])

    def fail_stale_student_runs(self, project_id: int) -> int:
        """Runs left 'running' by a process that no longer exists are marked failed; their
        predictions were never written (that happens in one transaction at the end)."""
        stale = [r["id"] for r in self._rows(
            "SELECT id, worker FROM student_runs WHERE project_id = ? AND status = 'running'",
            [project_id]) if not _worker_alive(r["worker"])]
        for run_id in stale:
            self._write("UPDATE student_runs SET status = 'failed', error = 'interrupted: the "
                        "process stopped before the run finished; start it again', "
                        "finished = ? WHERE id = ?", [now(), run_id])
        return len(stale)

    def student_run(self, run_id: int) -> dict:
        row = self._one("SELECT * FROM student_runs WHERE id = ?", [run_id])
        if row is None:
            raise ProjectError(f"No student run #{run_id}.")
        return _decode_student(row)

    def student_runs(self, project_id: int) -> list[dict]:
        return [_decode_student(r) for r in self._rows(
            "SELECT * FROM student_runs WHERE project_id = ? ORDER BY id DESC", [project_id])]

    def latest_student_run(self, project_id: int) -> dict | None:
        row = self._one("SELECT * FROM student_runs WHERE project_id = ? AND status = 'done' "
                        "ORDER BY id DESC LIMIT 1", [project_id])
        return _decode_student(row) if row else None

    def write_predictions(self, run_id: int, sample_ids: list[int], probs: np.ndarray,
                          labels: list[str], *, out_of_candidate: np.ndarray,
                          high_confidence: np.ndarray, small_loss: np.ndarray) -> None:
        probs = np.asarray(probs, dtype=np.float32)
        entropy = -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(1)
        with self._atomic():
            self.db.execute("DELETE FROM predictions WHERE run_id = ?", [run_id])
            self.db.conn.executemany(
                "INSERT INTO predictions (run_id, sample_id, probs, label, confidence, "
                "entropy, out_of_candidate, high_confidence, small_loss) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                [(run_id, sid, probs[i].tobytes(), labels[int(probs[i].argmax())],
                  float(probs[i].max()), float(entropy[i]), int(out_of_candidate[i]),
                  int(high_confidence[i]), int(small_loss[i]))
                 for i, sid in enumerate(sample_ids)])

    def predictions(self, run_id: int) -> list[dict]:
        rows = self._rows("SELECT * FROM predictions WHERE run_id = ? ORDER BY sample_id",
                          [run_id])
        for r in rows:
            r["probs"] = np.frombuffer(r["probs"], dtype=np.float32)
        return rows

    # ------------------------------------------------------------------ export
    def export_rows(self, project_id: int, *, limit: int | None = None) -> Iterator[dict]:
        """Every sample with its current human decision, latest student prediction and
        latest teacher annotation, in import order (one query)."""
        student = self.latest_student_run(project_id)
        teacher = self.latest_teacher_run(project_id)
        sql = f"""
            WITH cur AS ({_CURRENT_DECISIONS})
            SELECT s.id, s.ext_id, s.text, s.gold,
                   cur.action AS human_action, cur.label AS human_label,
                   p.label AS student_label, p.confidence AS student_confidence,
                   a.label AS teacher_label, a.confidence AS teacher_confidence,
                   a.candidates AS candidates
            FROM samples s
            LEFT JOIN cur ON cur.sample_id = s.id
            LEFT JOIN predictions p ON p.sample_id = s.id AND p.run_id = :student
            LEFT JOIN annotations a ON a.sample_id = s.id AND a.run_id = :teacher
            WHERE s.project_id = :project
            ORDER BY s.id
        """ + (" LIMIT :limit" if limit is not None else "")
        params = {"project": project_id, "student": student["id"] if student else -1,
                  "teacher": teacher["id"] if teacher else -1, "limit": limit}
        with self._lock:
            cur = self.db.conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        for row in rows:
            yield dict(zip(names, row))

    _PREDICTION_FILTERS = {
        "(any)": "",
        "disagrees with teacher": " AND a.label IS NOT NULL AND a.label != p.label",
        "disagrees with human": " AND cur.action = 'label' AND cur.label != p.label",
        "outside candidates": " AND p.out_of_candidate = 1",
    }
    _PREDICTION_ORDERS = {"confidence ascending": "p.confidence ASC, s.id",
                          "confidence descending": "p.confidence DESC, s.id", "id": "s.id"}

    def _prediction_query(self, select: str, run_id: int, project_id: int, *,
                          label: str | None, agreement: str) -> tuple[str, dict]:
        if agreement not in self._PREDICTION_FILTERS:
            raise ValueError(f"unknown agreement filter {agreement!r}")
        teacher = self.student_run(run_id)["teacher_run_id"] or -1
        sql = (f"WITH cur AS ({_CURRENT_DECISIONS}) SELECT {select} FROM predictions p "
               "JOIN samples s ON s.id = p.sample_id "
               "LEFT JOIN annotations a ON a.sample_id = p.sample_id AND a.run_id = :teacher "
               "LEFT JOIN cur ON cur.sample_id = p.sample_id WHERE p.run_id = :run"
               + (" AND p.label = :label" if label else "")
               + self._PREDICTION_FILTERS[agreement])
        return sql, {"run": run_id, "project": project_id, "teacher": teacher, "label": label}

    def count_predictions(self, run_id: int, *, label: str | None = None,
                          agreement: str = "(any)") -> int:
        project_id = self.student_run(run_id)["project_id"]
        sql, params = self._prediction_query("COUNT(*) AS n", run_id, project_id, label=label,
                                             agreement=agreement)
        return self._one(sql, params)["n"]

    def prediction_page(self, run_id: int, project_id: int, *, label: str | None = None,
                        agreement: str = "(any)", order: str = "id", limit: int = 50,
                        offset: int = 0) -> list[dict]:
        """One page of predictions with the text, candidates and decisions (SQL-paged)."""
        if order not in self._PREDICTION_ORDERS:
            raise ValueError(f"unknown order {order!r}")
        sql, params = self._prediction_query(
            "s.id AS sample_id, s.ext_id AS id, s.text, p.label AS student, "
            "ROUND(p.confidence, 3) AS confidence, a.label AS teacher, "
            "a.candidates AS candidates, cur.label AS human, "
            "p.out_of_candidate AS outside_candidates", run_id, project_id, label=label,
            agreement=agreement)
        sql += f" ORDER BY {self._PREDICTION_ORDERS[order]} LIMIT :limit OFFSET :offset"
        return self._rows(sql, {**params, "limit": limit, "offset": offset})

    def prediction_summary(self, run_id: int, project_id: int) -> dict:
        """Per-class counts and (student, reference, count) triples for confusion
        matrices, aggregated in SQL."""
        per_class = self._rows(
            "SELECT p.label AS label, COUNT(*) AS predicted, ROUND(AVG(p.confidence), 3) "
            "AS mean_confidence, SUM(p.out_of_candidate) AS outside_candidates "
            "FROM predictions p WHERE p.run_id = ? GROUP BY p.label ORDER BY predicted DESC",
            [run_id])
        human = [(r["p"], r["h"], r["n"]) for r in self._rows(
            f"WITH cur AS ({_CURRENT_DECISIONS}) SELECT p.label AS p, cur.label AS h, "
            "COUNT(*) AS n FROM predictions p JOIN cur ON cur.sample_id = p.sample_id "
            "WHERE p.run_id = :run AND cur.action = 'label' GROUP BY p.label, cur.label",
            {"run": run_id, "project": project_id})]
        gold = [(r["p"], r["g"], r["n"]) for r in self._rows(
            "SELECT p.label AS p, s.gold AS g, COUNT(*) AS n FROM predictions p "
            "JOIN samples s ON s.id = p.sample_id WHERE p.run_id = ? AND s.gold IS NOT NULL "
            "GROUP BY p.label, s.gold", [run_id])]
        return {"per_class": per_class, "human": human, "gold": gold}

    # ------------------------------------------------------------------ review
    def review_signals(self, project_id: int) -> dict[str, np.ndarray | list]:
        """Compact per-sample columns the review queue ranks on (latest teacher and student
        runs); one query, no texts."""
        teacher = self.latest_teacher_run(project_id)
        student = self.latest_student_run(project_id)
        sql = f"""
            WITH cur AS ({_CURRENT_DECISIONS})
            SELECT s.id, a.candidates, a.label, a.confidence, p.label, p.confidence,
                   p.entropy, p.out_of_candidate, cur.action
            FROM samples s
            LEFT JOIN annotations a ON a.sample_id = s.id AND a.run_id = :teacher
            LEFT JOIN predictions p ON p.sample_id = s.id AND p.run_id = :student
            LEFT JOIN cur ON cur.sample_id = s.id
            WHERE s.project_id = :project ORDER BY s.id"""
        with self._lock:
            rows = self.db.conn.execute(sql, {
                "project": project_id, "teacher": teacher["id"] if teacher else -1,
                "student": student["id"] if student else -1}).fetchall()
        cols = list(zip(*rows)) if rows else [[] for _ in range(9)]
        return {
            "sample_id": np.array(cols[0], dtype=np.int64),
            "candidates": [json.loads(c) if c else [] for c in cols[1]],
            "teacher_label": list(cols[2]),
            "teacher_confidence": np.array([c if c is not None else np.nan for c in cols[3]],
                                           dtype=float),
            "student_label": list(cols[4]),
            "student_confidence": np.array([c if c is not None else np.nan for c in cols[5]],
                                           dtype=float),
            "entropy": np.array([e if e is not None else np.nan for e in cols[6]], dtype=float),
            "out_of_candidate": np.array([bool(o) for o in cols[7]], dtype=bool),
            "decided": np.array([a is not None for a in cols[8]], dtype=bool),
            "teacher_run": teacher["id"] if teacher else None,
            "student_run": student["id"] if student else None,
        }

    def prediction(self, run_id: int, sample_id: int) -> dict | None:
        row = self._one("SELECT * FROM predictions WHERE run_id = ? AND sample_id = ?",
                        [run_id, sample_id])
        if row:
            row["probs"] = np.frombuffer(row["probs"], dtype=np.float32)
        return row

    def annotation(self, run_id: int, sample_id: int) -> dict | None:
        row = self._one("SELECT * FROM annotations WHERE run_id = ? AND sample_id = ?",
                        [run_id, sample_id])
        if row:
            row["candidates"] = json.loads(row["candidates"]) if row["candidates"] else None
        return row

    # ------------------------------------------------------------------ counts
    def status_counts(self, project_id: int) -> dict[str, int]:
        """The numbers of the home page status strip."""
        teacher = self.latest_teacher_run(project_id)
        tid = teacher["id"] if teacher else -1
        one = lambda sql, p: self._one(sql, p)["n"]  # noqa: E731
        return {
            "samples": self.count_samples(project_id),
            "with_gold": one("SELECT COUNT(*) AS n FROM samples WHERE project_id = ? AND "
                             "gold IS NOT NULL", [project_id]),
            "annotated": one("SELECT COUNT(*) AS n FROM annotations WHERE run_id = ? AND "
                             "candidates IS NOT NULL", [tid]),
            "ambiguous": one("SELECT COUNT(*) AS n FROM annotations WHERE run_id = ? AND "
                             "json_array_length(candidates) > 1", [tid]),
            "reviewed": len(self.current_decisions(project_id)),
            "teacher_runs": one("SELECT COUNT(*) AS n FROM teacher_runs WHERE project_id = ?",
                                [project_id]),
            "student_runs": one("SELECT COUNT(*) AS n FROM student_runs WHERE project_id = ? "
                                "AND status = 'done'", [project_id]),
        }


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _worker_alive(worker: str | None) -> bool:
    if not worker or ":" not in worker:
        return False
    host, pid = worker.rsplit(":", 1)
    if host != socket.gethostname():
        return True  # another machine's run: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _decode_run(row: dict) -> dict:
    row = dict(row)
    row["params"] = json.loads(row["params"])
    row["summary"] = json.loads(row["summary"]) if row.get("summary") else None
    return row


def _decode_student(row: dict) -> dict:
    row = dict(row)
    row["config"] = json.loads(row["config"])
    row["epochs"] = json.loads(row["epochs"])
    return row


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]

