"""The CLI of the audit (issue 12): ``audit``, ``decide``, ``metrics --json``'s ``audit``
key, ``annotate --strategy conformal`` and the quality gate's warning on stderr, each in a
real subprocess on real TREC texts with the offline teacher."""
import json
import shutil

import pandas as pd
import pytest

from conftest import dataset, run_cli
from test_audit import POOL, swapped_schema
from candist_core.schema import load_schema, save_schema


def _project(base, trec_dir, name: str, *, swapped: bool):
    db = base / f"{name}.db"
    frame = pd.read_csv(trec_dir / "train.csv", dtype=str, keep_default_na=False)
    frame = frame.sample(n=POOL, random_state=0)
    frame.insert(0, "id", [f"q{i}" for i in range(len(frame))])
    frame.to_csv(base / "pool.csv", index=False)
    labels = base / f"{name}-labels.json"
    schema = load_schema(trec_dir / "labels.json")
    save_schema(swapped_schema(schema) if swapped else schema, labels)
    run_cli("init", "--db", db, "--project", "p", "--labels", labels, check=True)
    run_cli("import", "--db", db, "--project", "p", "--csv", base / "pool.csv", "--id-col",
            "id", check=True)            # no gold: the audit is all the app knows
    return db


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli-audit")
    trec = dataset("trec")
    return {"trec": _project(base, trec, "trec", swapped=False),
            "swapped": _project(base, trec, "swapped", swapped=True),
            "gold": pd.read_csv(base / "pool.csv", dtype=str).set_index("id")["label"]}


@pytest.fixture
def db(dbs, tmp_path):
    def copy(name):
        path = tmp_path / f"{name}.db"
        shutil.copy(dbs[name], path)
        return path
    return copy


def audit_labels(path, gold, ids) -> None:
    pd.DataFrame({"id": ids, "label": [gold[i] for i in ids]}).to_csv(path, index=False)


def test_audit_draws_extends_and_writes_the_sample(db, tmp_path):
    trec = db("trec")
    out = tmp_path / "audit.csv"
    proc = run_cli("audit", "--db", trec, "--project", "p", "--draw", "50", "--out", out,
                   check=True)
    assert proc.stdout.splitlines()[0] == (
        f"Audit sample: 50 texts (50 new), 0 audited, 0 skipped, 50 left; wrote 50 rows to "
        f"{out}.")
    first = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(first.columns) == ["id", "text"] and first["id"].is_unique
    run_cli("audit", "--db", trec, "--project", "p", "--draw", "20", "--out", out, check=True)
    both = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(both) == 70 and both["id"][:50].tolist() == first["id"].tolist()


def test_decide_stops_at_an_unknown_id_or_label_and_writes_nothing(db, dbs, tmp_path):
    trec = db("trec")
    run_cli("audit", "--db", trec, "--project", "p", "--draw", "5", "--out",
            tmp_path / "a.csv", check=True)
    ids = pd.read_csv(tmp_path / "a.csv", dtype=str)["id"].tolist()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": ids[:2] + ["nope"], "label": ["Human"] * 3}).to_csv(bad, index=False)
    proc = run_cli("decide", "--db", trec, "--project", "p", "--csv", bad, "--audit")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: Unknown id 'nope' in {bad} (row 3): ids are the "
                                   f"export's id column.")
    pd.DataFrame({"id": ids[:2], "label": ["Human", "Hum"]}).to_csv(bad, index=False)
    proc = run_cli("decide", "--db", trec, "--project", "p", "--csv", bad, "--audit")
    assert proc.stderr.strip() == (
        f"error: Unknown label 'Hum' in {bad} (row 2): use one of Abbreviation, Entity, "
        f"Description, Human, Location, Numeric.")
    metrics = json.loads(run_cli("metrics", "--db", trec, "--project", "p", "--json",
                                 check=True).stdout)
    assert metrics["reviewed"] == 0 and metrics["audit"]["n"] == 0


@pytest.mark.slow
def test_an_audit_labeled_in_a_spreadsheet_gives_estimates_and_conformal_sets(db, dbs,
                                                                              tmp_path):
    trec = db("trec")
    run_cli("annotate", "--db", trec, "--project", "p", "--strategy", "ca_all", check=True)
    run_cli("audit", "--db", trec, "--project", "p", "--draw", "60", "--seed", "2", "--out",
            tmp_path / "a.csv", check=True)
    ids = pd.read_csv(tmp_path / "a.csv", dtype=str)["id"].tolist()
    audit_labels(tmp_path / "labels.csv", dbs["gold"], ids)
    proc = run_cli("decide", "--db", trec, "--project", "p", "--csv", tmp_path / "labels.csv",
                   "--audit", "--who", "ann", check=True)
    assert proc.stdout.strip() == f"Recorded 60 audit decisions from {tmp_path / 'labels.csv'}."
    audit = json.loads(run_cli("metrics", "--db", trec, "--project", "p", "--json",
                               check=True).stdout)["audit"]
    assert audit["n"] == 60 and audit["student_accuracy"] is None and audit["gate"] is None
    for key in ("teacher_accuracy", "coverage", "mean_labels", "export_accuracy"):
        assert set(audit[key]) == {"value", "low", "high"}
        assert audit[key]["low"] <= audit[key]["value"] <= audit[key]["high"]
    proc = run_cli("annotate", "--db", trec, "--project", "p", "--strategy", "conformal",
                   "--coverage", "0.9", "--json", check=True)
    result = json.loads(proc.stdout)
    assert (result["n"], result["coverage_target"], result["score"]) == (60, 0.9,
                                                                         "probability")
    teacher = json.loads(run_cli("metrics", "--db", trec, "--project", "p", "--json",
                                 check=True).stdout)["teacher"]
    assert (teacher["strategy"], teacher["run_id"]) == ("conformal", result["run_id"])


def test_annotate_and_export_warn_on_stderr_when_the_teacher_is_near_chance(db, dbs,
                                                                            tmp_path):
    swapped = db("swapped")
    proc = run_cli("annotate", "--db", swapped, "--project", "p", "--strategy", "ca_all",
                   check=True)
    assert "note: Quality unknown: there are no gold labels and no audit yet." in proc.stderr
    run_cli("audit", "--db", swapped, "--project", "p", "--draw", "40", "--out",
            tmp_path / "a.csv", check=True)
    ids = pd.read_csv(tmp_path / "a.csv", dtype=str)["id"].tolist()
    audit_labels(tmp_path / "labels.csv", dbs["gold"], ids)
    run_cli("decide", "--db", swapped, "--project", "p", "--csv", tmp_path / "labels.csv",
            "--audit", check=True)
    proc = run_cli("export", "--db", swapped, "--project", "p", "--out", tmp_path / "o.csv",
                   check=True)
    warning = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1
    assert warning[0].startswith("warning: Teacher quality gate: the teacher is close to "
                                 "guessing")
    assert "(from 40 audited texts)" in warning[0]
    audit = json.loads(run_cli("metrics", "--db", swapped, "--project", "p", "--json",
                               check=True).stdout)["audit"]
    assert audit["gate"] == warning[0].removeprefix("warning: ")


@pytest.mark.slow
def test_no_warning_for_trec_with_the_offline_teacher(db, dbs, tmp_path):
    trec = db("trec")
    run_cli("annotate", "--db", trec, "--project", "p", "--strategy", "ca_all", check=True)
    run_cli("audit", "--db", trec, "--project", "p", "--draw", "40", "--out",
            tmp_path / "a.csv", check=True)
    ids = pd.read_csv(tmp_path / "a.csv", dtype=str)["id"].tolist()
    audit_labels(tmp_path / "labels.csv", dbs["gold"], ids)
    run_cli("decide", "--db", trec, "--project", "p", "--csv", tmp_path / "labels.csv",
            "--audit", check=True)
    proc = run_cli("export", "--db", trec, "--project", "p", "--out", tmp_path / "o.csv",
                   check=True)
    assert "warning" not in proc.stderr and "note" not in proc.stderr
