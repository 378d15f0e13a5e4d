"""A recognisable API key through a whole run (import, LLM annotation with a server that
echoes the key in an error, distillation, export, metrics): afterwards no file the run wrote
and no line it printed contains the key."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from candist_core.store import Store
from reliability.pipeline import files_containing

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-proj-FULLRUN-RECOGNISABLE-9f8e7d6c5b4a"


def test_the_key_is_in_no_file_and_no_output_of_a_full_run(tmp_path, trec_dir, fake):
    fake.script.extend([{"content": '{"labels": ["Entity"]}'},
                        {"status": 500, "body": {"error": {
                            "message": f"upstream failed for key {KEY}", "type": "server"}}}])
    pd.read_csv(trec_dir / "test.csv").head(24).to_csv(tmp_path / "q.csv", index=False)
    db, out = tmp_path / "run.db", tmp_path / "exports" / "clean.csv"
    out.parent.mkdir()
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    steps = [
        ["init", "--labels", trec_dir / "labels.json"],
        ["import", "--csv", tmp_path / "q.csv", "--gold-col", "label"],
        ["annotate", "--teacher", "openai", "--base-url", fake.url, "--model", "fake-model",
         "--strategy", "ca_all", "--shots", "0", "--max-retries", "0", "--json"],
        ["distill", "--epochs", "1", "--extra-epochs", "0", "--json"],
        ["export", "--out", out],
        ["metrics", "--json"],
    ]
    printed = []
    for step in steps:
        proc = subprocess.run([sys.executable, "-m", "candist_core", step[0], "--db", db,
                               "--project", "trec", *map(str, step[1:])], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        printed.append(proc.stdout + proc.stderr)
        assert proc.returncode in ((0, 3) if step[0] == "annotate" else (0,)), proc.stderr
    auth = {r.get("authorization") for r in fake.headers}
    assert auth == {f"Bearer {KEY}"}              # the key was really used ...
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.suffix for p in written} >= {".db", ".csv", ".safetensors"}
    assert files_containing(tmp_path, KEY) == []  # ... and is in nothing written
    assert not any(KEY in text for text in printed)
    with Store(db) as store:                      # the echoed error was kept, scrubbed
        run = store.latest_teacher_run(store.get_project("trec").id)
        errors = store.annotations(run.id, errors_only=True)
    assert [e.error_kind for e in errors] == ["server_error"]
    assert "upstream failed for key [redacted]" in errors[0].error


def test_a_key_typed_in_the_page_is_in_no_message_and_no_file(tmp_path, trec_dir, fake,
                                                              monkeypatch):
    from streamlit.testing.v1 import AppTest

    from candist_core.importing import import_csv
    from candist_core.schema import load_schema
    from test_pages import wait_for_job
    typed = "sk-typed-RECOGNISABLE-in-the-page-1234"
    fake.script.append({"status": 401, "body": {"error": {
        "message": f"Incorrect API key provided: {typed}", "type": "invalid_request_error"}}})
    db = tmp_path / "ui.db"
    pd.read_csv(trec_dir / "test.csv").head(10).to_csv(tmp_path / "q.csv", index=False)
    with Store(db) as store:
        project = store.create_project("trec", load_schema(trec_dir / "labels.json"))
        import_csv(store, project.id, tmp_path / "q.csv")
    monkeypatch.setenv("CANDIST_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("views/annotate.py").run()
    at.radio[0].set_value("openai").run()
    at.text_input[0].set_value(fake.url)
    at.text_input[1].set_value("fake-model")
    at.text_input(key="api_key").set_value(typed)
    at.number_input[1].set_value(0).run()          # shots
    next(b for b in at.button if b.label == "Start annotation").click().run()
    wait_for_job(at, "Annotation done")
    shown = [e.value for kind in (at.error, at.warning, at.exception, at.markdown,
                                  at.caption, at.success, at.info) for e in kind]
    assert "Annotation failed just now: The server refused the API key (401): check the key for " \
           "this server." in shown
    assert not any(typed in str(text) for text in shown)
    assert {r.get("authorization") for r in fake.headers} == {f"Bearer {typed}"}
    assert files_containing(tmp_path, typed) == []
