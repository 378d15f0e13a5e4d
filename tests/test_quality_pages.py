"""Issue 12 on the pages (AppTest over real SQLite files and the real offline teacher): the
teacher quality gate on every page that leads to an export, the "quality unknown" hint and
the Home next step before an audit, and the Review page's blind Audit mode."""
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from candist_core.encoder import shared_encoder
from candist_core.importing import ImportOptions, import_csv
from candist_core.schema import load_schema
from candist_core.store import Store
from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
from conftest import ROOT
from test_audit import swapped_schema

GATED_PAGES = ["home", "annotate", "distill", "export"]


def project_db(tmp_path, trec_dir, *, swapped=False, gold=True, n=150):
    db = tmp_path / "app.db"
    pd.read_csv(trec_dir / "train.csv").sample(n=n, random_state=3).to_csv(
        tmp_path / "slice.csv", index=False)
    schema = load_schema(trec_dir / "labels.json")
    with Store(db) as store:
        project = store.create_project("trec", swapped_schema(schema) if swapped else schema)
        import_csv(store, project.id, tmp_path / "slice.csv",
                   options=ImportOptions(gold_col="label" if gold else None))
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all"))
    return db


def open_page(db, monkeypatch, name: str) -> AppTest:
    monkeypatch.setenv("CANDIST_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    if name != "home":
        at.switch_page(f"views/{name}.py")
        at.run()
    assert not at.exception, at.exception
    return at


def test_the_gate_warns_on_every_page_before_an_export_for_a_near_chance_teacher(
        tmp_path, trec_dir, monkeypatch):
    db = project_db(tmp_path, trec_dir, swapped=True)
    for name in GATED_PAGES:
        at = open_page(db, monkeypatch, name)
        warnings = [w.value for w in at.warning if "Teacher quality gate" in w.value]
        assert warnings, name
        assert "close to guessing" in warnings[0] and "LLM teacher" in warnings[0]


def test_no_gate_on_trec_with_the_offline_teacher(tmp_path, trec_dir, monkeypatch):
    db = project_db(tmp_path, trec_dir)
    for name in GATED_PAGES:
        at = open_page(db, monkeypatch, name)
        assert not [w for w in at.warning if "quality gate" in w.value], name


def test_audit_mode_labels_blind_and_the_home_estimate_follows(tmp_path, trec_dir,
                                                               monkeypatch):
    db = project_db(tmp_path, trec_dir, gold=False)
    home = open_page(db, monkeypatch, "home")
    assert any("Quality unknown" in i.value for i in home.info)
    assert any("Next step: audit ~50 randomly drawn texts" in i.value for i in home.info)

    at = open_page(db, monkeypatch, "review")
    at.radio(key="review_mode").set_value("audit").run()
    at.number_input[0].set_value(10).run()
    next(b for b in at.button if b.label == "Draw 10 random texts").click().run()
    assert at.get("progress")[0].proto.text == "0 of 10 drawn texts audited"
    labels = load_schema(trec_dir / "labels.json").names
    for _ in range(10):
        shown = [b.label for b in at.button if b.label in labels]
        assert shown == labels            # blind: every label, in schema order, no highlight
        assert all(b.proto.type != "primary" for b in at.button if b.label in labels)
        next(b for b in at.button if b.label == labels[0]).click().run()
        assert not at.exception, at.exception
    assert any("Every drawn text is audited" in s.value for s in at.success)
    with Store(db) as store:
        project = store.get_project("trec")
        assert store.audit_status(project.id)["labeled"] == 10
        assert all(d.audit for d in store.audit_decisions(project.id).values())

    home = open_page(db, monkeypatch, "home")
    text = " ".join(c.value for c in home.caption)
    assert "from 10 audited texts" in text and "95% CI" in text
