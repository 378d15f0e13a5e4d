"""The CLI contract on real data: init, import, export, metrics, and error exits."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT, run_cli


@pytest.fixture
def trec_db(tmp_path, trec_dir):
    db = tmp_path / "c.db"
    run_cli("init", "--db", db, "--project", "trec", "--labels", trec_dir / "labels.json",
            check=True)
    proc = run_cli("import", "--db", db, "--project", "trec", "--csv", trec_dir / "train.csv",
                   "--gold-col", "label", "--json", check=True)
    assert json.loads(proc.stdout)["imported"] == 5452
    return db


def test_trec_round_trip_keeps_every_row_and_text(trec_db, trec_dir, tmp_path):
    again = run_cli("import", "--db", trec_db, "--project", "trec", "--csv",
                    trec_dir / "train.csv", "--gold-col", "label", "--json", check=True)
    assert json.loads(again.stdout)["imported"] == 0
    out = tmp_path / "out.csv"
    proc = run_cli("export", "--db", trec_db, "--project", "trec", "--out", out, check=True)
    assert proc.stdout.startswith("Wrote 5452 rows")
    exported = pd.read_csv(out, dtype=str, keep_default_na=False)
    source = pd.read_csv(trec_dir / "train.csv", dtype=str, keep_default_na=False)
    assert len(exported) == 5452
    assert exported["id"].is_unique
    assert exported["text"].tolist() == source["text"].tolist()
    assert exported["gold"].tolist() == source["label"].tolist()


def test_metrics_json_has_the_documented_keys(trec_db):
    proc = run_cli("metrics", "--db", trec_db, "--project", "trec", "--json", check=True)
    metrics = json.loads(proc.stdout)
    assert {"project", "labels", "samples", "with_gold", "annotated", "ambiguous", "reviewed",
            "teacher_runs", "student_runs", "teacher", "student"} <= set(metrics)
    assert (metrics["samples"], metrics["with_gold"], metrics["labels"]) == (5452, 5452, 6)


@pytest.mark.parametrize("args, message", [
    (["metrics", "--db", "{tmp}/missing.db", "--project", "x", "--json"],
     "error: Database {tmp}/missing.db does not exist: create it with 'init'."),
    (["init", "--db", "{tmp}/a.db", "--project", "../up", "--labels", "{trec}/labels.json"],
     "error: Project name '../up' is not allowed: use letters, digits, spaces, '.', '-' or "
     "'_' (at most 100 characters, no path separators and no '..')."),
    (["init", "--db", "{tmp}/a.db", "--project", "x", "--labels", "{tmp}/none.json"],
     "error: Label file not found: {tmp}/none.json"),
])
def test_errors_exit_2_with_one_actionable_line(tmp_path, trec_dir, args, message):
    fill = lambda s: s.format(tmp=tmp_path, trec=trec_dir)  # noqa: E731
    proc = run_cli(*[fill(a) for a in args])
    assert proc.returncode == 2
    assert proc.stderr.strip() == fill(message)


def test_unknown_project_lists_the_known_ones(trec_db):
    proc = run_cli("export", "--db", trec_db, "--project", "nope", "--out", "x.csv")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: No project named 'nope' in {trec_db}. Known " \
                                  f"projects: trec."


def test_demo_loads_once(tmp_path):
    db = tmp_path / "d.db"
    assert "created" in run_cli("demo", "--db", db, "--if-missing", check=True).stdout
    assert "already present" in run_cli("demo", "--db", db, "--if-missing", check=True).stdout
    metrics = json.loads(run_cli("metrics", "--db", db, "--project", "demo", "--json",
                                 check=True).stdout)
    assert (metrics["samples"], metrics["with_gold"], metrics["labels"]) == (150, 150, 5)


def test_commands_that_train_nothing_start_without_loading_transformers():
    # transformers takes seconds to import: init, import, metrics, export, queue and the
    # rest answer without it; distill and predict load it when they run.
    probe = ("import sys, candist_core.cli; "
             "print('transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "False"


def test_every_command_prints_its_help(capsys):
    # In-process: argparse formats each help with %, so a bare "2%" in one breaks --help.
    from candist_core.cli import COMMANDS, build_parser
    parser = build_parser()
    helps = {}
    for name in COMMANDS:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"])
        assert done.value.code == 0, name
        helps[name] = " ".join(capsys.readouterr().out.split())
        assert helps[name].startswith("usage:"), name
    assert "still changed at least 2% of the labels" in helps["distill"]
