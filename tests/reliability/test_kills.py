"""SIGKILL of a CLI process in the middle of paid-for or long work: nothing received or
reported as saved is lost, nothing is bought twice, nothing is half-written."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from candist_core.distill import fail_interrupted_runs
from candist_core.schema import build_schema
from candist_core.store import Store
from llama_server import CountingProxy, llama_server
from reliability.pipeline import (done_count, saved_sample_texts, texts_asked, trec_db,
                                  wait_until)

ROOT = Path(__file__).resolve().parents[2]
DECISION_WRITER = """
import sys
from candist_core.store import Store
store = Store(sys.argv[1])
project = store.get_project("p")
ids = [s.id for s in store.samples(project.id)]
i = 0
while True:
    sid = ids[i % len(ids)]
    did = store.record_decision(project.id, sid, action="label", label="a", who="w",
                                note=str(i))
    print(did, flush=True)
    i += 1
"""


def cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "candist_core", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_process_killed_in_a_burst_of_decisions_keeps_every_one_it_reported(tmp_path,
                                                                                tally):
    db = tmp_path / "c.db"
    with Store(db) as store:
        project = store.create_project("p", build_schema("t", ["a", "b"]))
        store.insert_samples(project.id, [(str(i), f"t{i}", None) for i in range(50)])
    proc = subprocess.Popen([sys.executable, "-c", DECISION_WRITER, str(db)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    reported = []
    deadline = time.time() + 60
    while len(reported) < 300 and time.time() < deadline:
        reported.append(int(proc.stdout.readline()))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store(db) as store:
        assert store.integrity_check() == "ok"
        saved = {r.id for r in store.decision_log(project.id, limit=1_000_000)}
    lost = len(set(reported) - saved)
    tally("kill", "process writing decisions", lost_decisions=lost)
    assert len(reported) >= 300
    assert lost == 0


@pytest.mark.slow
def test_killed_cli_annotation_keeps_every_reply_and_buys_none_twice(tmp_path, trec_dir,
                                                                     tally):
    db = trec_db(tmp_path, trec_dir)
    with llama_server(log_dir=tmp_path) as (url, _):
        proxy = CountingProxy(url)
        args = ["annotate", "--db", db, "--project", "trec", "--teacher", "openai",
                "--base-url", proxy.url, "--model", "smollm2", "--strategy", "ca_add",
                "--shots", "0", "--concurrency", "2"]
        try:
            first = cli(*args)
            assert wait_until(lambda: done_count(db) >= 6)
            first.send_signal(signal.SIGKILL)
            first.wait()
            saved_texts = saved_sample_texts(db)
            requests_before = len(proxy.bodies)
            second = cli(*args)
            out, err = second.communicate(timeout=600)
        finally:
            proxy.close()
    assert second.returncode in (0, 3), err
    with Store(db) as store:
        assert store.integrity_check() == "ok"
    bought_twice = texts_asked(proxy.bodies[requests_before:]) & saved_texts
    tally("kill", "CLI annotation (OpenAI path, llama.cpp)", lost_replies=len(
        saved_texts - saved_sample_texts(db)))
    assert done_count(db) == 24
    assert len(saved_texts) >= 6
    assert not bought_twice


@pytest.mark.slow
def test_killed_cli_distillation_is_marked_failed_and_never_half_written(tmp_path, trec_dir,
                                                                         tally):
    db = trec_db(tmp_path, trec_dir, annotate=True)
    proc = cli("distill", "--db", db, "--project", "trec", "--epochs", "50")

    def epoch_recorded():
        with Store(db) as store:
            runs = store.student_runs(store.get_project("trec").id)
            return bool(runs and runs[0].epochs)

    assert wait_until(epoch_recorded, seconds=300)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store(db) as store:
        project = store.get_project("trec")
        run = store.student_runs(project.id)[0]
        assert run.status == "running"          # as the dead process left it
        assert store.predictions(run.id) == []  # nothing half-written
        assert fail_interrupted_runs(store, project.id) == 1
        assert store.student_run(run.id).status == "failed"
        assert store.integrity_check() == "ok"
    tally("kill", "CLI distillation")
