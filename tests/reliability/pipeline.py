"""Small real projects for the reliability scenarios, and what they ask of the database."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from candist_core.importing import ImportOptions, import_csv
from candist_core.schema import load_schema
from candist_core.store import Store


def trec_db(tmp_path: Path, trec_dir: Path, *, rows: int = 24, annotate: bool = False) -> Path:
    """A database with one project 'trec' holding the first ``rows`` TREC test questions
    (gold labels kept), annotated by the offline teacher if asked."""
    db = tmp_path / "k.db"
    pd.read_csv(trec_dir / "test.csv").head(rows).to_csv(tmp_path / "q.csv", index=False)
    with Store(db) as store:
        project = store.create_project("trec", load_schema(trec_dir / "labels.json"))
        import_csv(store, project.id, tmp_path / "q.csv", options=ImportOptions(gold_col="label"))
        if annotate:
            from candist_core.encoder import shared_encoder
            from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
            annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                             TeacherConfig(strategy="ca_all"))
    return db


def wait_until(predicate, seconds: float = 120) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def done_count(db: Path) -> int:
    """Samples of the latest teacher run whose reply is stored."""
    with Store(db) as store:
        run = store.latest_teacher_run(store.get_project("trec").id)
        return len(store.done_sample_ids(run.id)) if run else 0


def saved_sample_texts(db: Path) -> set[str]:
    with Store(db) as store:
        project = store.get_project("trec")
        run = store.latest_teacher_run(project.id)
        ids = store.done_sample_ids(run.id)
        return {s.text for s in store.samples(project.id, ids=ids)}


def texts_asked(bodies: list[bytes]) -> set[str]:
    """The sample texts in a list of recorded chat-completion request bodies."""
    return {json.loads(b)["messages"][-1]["content"][len("Text: "):] for b in bodies}


def decided_texts(db: Path) -> set[str]:
    with Store(db) as store:
        project = store.get_project("trec")
        current = store.current_decisions(project.id)
        return {s.text for s in store.samples(project.id, ids=list(current))}


def files_containing(root: Path, secret: str) -> list[Path]:
    """Every file under ``root`` (databases, WAL, logs, exports, checkpoints) holding it."""
    needle = secret.encode()
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]
