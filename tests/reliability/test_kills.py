"""SIGKILL in the middle of paid-for or long work: nothing received is lost or re-bought."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from candist_core.schema import load_schema
from candist_core.store import Store
from llama_server import CountingProxy, llama_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "candist_core", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(predicate, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def trec_db(tmp_path, trec_dir):
    db = tmp_path / "k.db"
    frame = pd.read_csv(trec_dir / "test.csv").head(24)
    frame.to_csv(tmp_path / "q.csv", index=False)
    with Store(db) as store:
        store.create_project("trec", load_schema(trec_dir / "labels.json"))
    subprocess.run([sys.executable, "-m", "candist_core", "import", "--db", db, "--project",
                    "trec", "--csv", tmp_path / "q.csv", "--gold-col", "label"], cwd=ROOT,
                   check=True, capture_output=True)
    return db


def saved_sample_texts(db) -> set[str]:
    with Store(db) as store:
        project = store.get_project("trec")
        run = store.latest_teacher_run(project.id)
        ids = store.done_sample_ids(run["id"])
        return {s.text for s in store.samples(project.id, ids=ids)}


def done_count(db) -> int:
    with Store(db) as store:
        run = store.latest_teacher_run(store.get_project("trec").id)
        return len(store.done_sample_ids(run["id"])) if run else 0


def test_killed_cli_annotation_keeps_every_reply_and_buys_none_twice(trec_db, tmp_path):
    with llama_server(log_dir=tmp_path) as (url, _):
        proxy = CountingProxy(url)
        args = ["annotate", "--db", trec_db, "--project", "trec", "--teacher", "openai",
                "--base-url", proxy.url, "--model", "smollm2", "--strategy", "ca_add",
                "--shots", "0", "--concurrency", "2"]
        try:
            first = cli(*args)
            assert wait_until(lambda: done_count(trec_db) >= 6)
            first.send_signal(signal.SIGKILL)
            first.wait()
            saved_texts = saved_sample_texts(trec_db)
            requests_before = len(proxy.bodies)
            second = cli(*args)
            out, err = second.communicate(timeout=600)
        finally:
            proxy.close()
    assert second.returncode in (0, 3), err
    with Store(trec_db) as store:
        assert store.integrity_check() == "ok"
    assert done_count(trec_db) == 24
    asked_again = {json.loads(b)["messages"][-1]["content"][len("Text: "):]
                   for b in proxy.bodies[requests_before:]}
    assert len(saved_texts) >= 6
    assert not asked_again & saved_texts   # no stored reply was bought twice


def test_killed_distillation_is_marked_failed_and_never_half_written(trec_db, tmp_path):
    subprocess.run([sys.executable, "-m", "candist_core", "annotate", "--db", trec_db,
                    "--project", "trec"], cwd=ROOT, check=True, capture_output=True)
    proc = cli("distill", "--db", trec_db, "--project", "trec", "--epochs", "50")

    def epoch_recorded():
        with Store(trec_db) as store:
            runs = store.student_runs(store.get_project("trec").id)
            return bool(runs and runs[0]["epochs"])

    assert wait_until(epoch_recorded, seconds=300)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store(trec_db) as store:
        project = store.get_project("trec")
        run = store.student_runs(project.id)[0]
        assert run["status"] == "running"          # as the dead process left it
        assert store.predictions(run["id"]) == []  # nothing half-written
        assert store.fail_stale_student_runs(project.id) == 1
        assert store.student_run(run["id"])["status"] == "failed"
        assert store.integrity_check() == "ok"
