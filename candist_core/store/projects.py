"""Projects, their label schemas, and the samples (texts) imported into them."""
from __future__ import annotations

import re
from typing import Iterable

from ..records import Label, LabelSchema, Project, ProjectError, Sample
from .connection import Connection, now

_PROJECT_NAME = re.compile(r"^[\w][\w .\-]{0,99}$")
_CHUNK = 900   # ids per "IN (...)": under SQLite's default limit of bound parameters


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


def _project(row: dict) -> Project:
    return Project(row["id"], row["name"], row["task"], row["created"])


def _sample(row: dict) -> Sample:
    return Sample(row["id"], row["ext_id"], row["text"], row["gold"])


class ProjectsTable:
    """``projects`` and ``labels``."""

    _c: Connection

    def create_project(self, name: str, schema: LabelSchema) -> Project:
        name = validate_project_name(name)
        with self._c.atomic() as db:
            if self._c.one("SELECT id FROM projects WHERE name = ?", [name]):
                raise ProjectError(f"Project {name!r} already exists in {self._c.path}.")
            created = now()
            pid = db["projects"].insert({"name": name, "task": schema.task,
                                         "created": created}).last_pk
            self._insert_labels(pid, schema.labels)
        return Project(pid, name, schema.task, created)

    def _insert_labels(self, project_id: int, labels: Iterable[Label]) -> None:
        self._c.table("labels").insert_all(
            {"project_id": project_id, "name": label.name, "description": label.description,
             "position": i} for i, label in enumerate(labels))

    def get_project(self, name: str) -> Project:
        row = self._c.one("SELECT * FROM projects WHERE name = ?", [name])
        if row is None:
            known = [p.name for p in self.list_projects()]
            hint = f" Known projects: {', '.join(known)}." if known else (
                " The database has no project yet: run 'init' first.")
            raise ProjectError(f"No project named {name!r} in {self._c.path}.{hint}")
        return _project(row)

    def project_by_id(self, project_id: int) -> Project:
        row = self._c.one("SELECT * FROM projects WHERE id = ?", [project_id])
        if row is None:
            raise ProjectError(f"No project #{project_id} in {self._c.path}.")
        return _project(row)

    def list_projects(self) -> list[Project]:
        return [_project(r) for r in self._c.rows("SELECT * FROM projects ORDER BY id")]

    def label_schema(self, project_id: int) -> LabelSchema:
        task = self._c.scalar("SELECT task FROM projects WHERE id = ?", [project_id])
        labels = self._c.table("labels").rows_where(
            "project_id = ?", [project_id], order_by="position", select="name, description")
        with self._c.lock:
            labels = [Label(r["name"], r["description"]) for r in labels]
        return LabelSchema(task, tuple(labels))

    def labels_in_use(self, project_id: int) -> set[str]:
        """Labels that annotations, decisions or predictions refer to."""
        rows = self._c.tuples(
            "SELECT DISTINCT j.value FROM annotations a JOIN teacher_runs t ON t.id = a.run_id, "
            "json_each(a.candidates) j WHERE t.project_id = :p AND a.candidates IS NOT NULL "
            "UNION SELECT DISTINCT label FROM decisions WHERE project_id = :p "
            "AND label IS NOT NULL "
            "UNION SELECT DISTINCT p.label FROM predictions p "
            "JOIN student_runs s ON s.id = p.run_id WHERE s.project_id = :p", {"p": project_id})
        return {r[0] for r in rows}

    def replace_labels(self, project_id: int, schema: LabelSchema) -> None:
        """Replace task and labels; callers check :meth:`labels_in_use` first."""
        with self._c.atomic() as db:
            db["projects"].update(project_id, {"task": schema.task})
            db["labels"].delete_where("project_id = ?", [project_id])
            self._insert_labels(project_id, schema.labels)


class SamplesTable:
    """``samples``: the texts of a project, their external ids and optional gold labels."""

    _c: Connection

    def existing_ext_ids(self, project_id: int) -> set[str]:
        return {r[0] for r in self._c.tuples("SELECT ext_id FROM samples WHERE project_id = ?",
                                              [project_id])}

    def insert_samples(self, project_id: int, rows: list[tuple[str, str, str | None]]) -> int:
        """Insert ``(ext_id, text, gold)`` rows in one transaction; existing ids are kept.
        Returns how many were new."""
        count = "SELECT COUNT(*) FROM samples WHERE project_id = ?"
        with self._c.atomic() as db:
            # counted, not total_changes: the full-text index's triggers change rows too
            before = self._c.scalar(count, [project_id])
            db["samples"].insert_all(
                ({"project_id": project_id, "ext_id": e, "text": t, "gold": g}
                 for e, t, g in rows), ignore=True, batch_size=500)
            return self._c.scalar(count, [project_id]) - before

    def gold_labels(self, project_id: int) -> dict[int, str]:
        """sample id -> gold label, for the samples that have one."""
        return dict(self._c.tuples("SELECT id, gold FROM samples WHERE project_id = ? "
                                   "AND gold IS NOT NULL", [project_id]))

    def has_gold(self, project_id: int) -> bool:
        return self._c.scalar("SELECT EXISTS (SELECT 1 FROM samples WHERE project_id = ? "
                              "AND gold IS NOT NULL)", [project_id]) == 1

    def text_stats(self, project_id: int, *, limit: int | None = None) -> tuple[int, float]:
        """(number of samples, mean text length in characters) of the first ``limit``."""
        row = self._c.one("SELECT COUNT(*) AS n, AVG(LENGTH(text)) AS chars FROM (SELECT text "
                          "FROM samples WHERE project_id = ? ORDER BY id LIMIT ?)",
                          [project_id, -1 if limit is None else limit])
        return row["n"], row["chars"] or 0.0

    def count_samples(self, project_id: int) -> int:
        return self._c.scalar("SELECT COUNT(*) FROM samples WHERE project_id = ?",
                              [project_id])

    def mean_text_chars(self, project_id: int) -> float:
        """The mean length of the project's texts in characters (0 without texts)."""
        return float(self._c.scalar("SELECT COALESCE(AVG(LENGTH(text)), 0) FROM samples "
                                    "WHERE project_id = ?", [project_id]))

    def samples(self, project_id: int, *, ids: Iterable[int] | None = None,
                limit: int | None = None, offset: int = 0) -> list[Sample]:
        """Samples in import order, or the given ``ids`` in the order given."""
        table = self._c.table("samples")
        select = "id, ext_id, text, gold"
        if ids is None:
            with self._c.lock:
                return [_sample(r) for r in table.rows_where(
                    "project_id = ?", [project_id], order_by="id", select=select,
                    limit=limit, offset=offset if limit is not None else None)]
        ids = list(ids)
        found: dict[int, Sample] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            with self._c.lock:
                found.update((r["id"], _sample(r)) for r in table.rows_where(
                    f"project_id = ? AND id IN ({','.join('?' * len(chunk))})",
                    [project_id, *chunk], select=select))
        return [found[i] for i in ids if i in found]
