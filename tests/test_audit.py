"""The random audit: drawing it, keeping its decisions apart, the estimates with Wilson
intervals, the teacher quality gate, and epoch selection on audited texts.

Real components: SQLite files in tmp_path, TREC texts, the offline teacher with MiniLM.
"""
import shutil

import pandas as pd
import pytest
import torch

from candist_core.audit import (GATE_MIN_AUDIT, audit_estimates, plan_decisions,
                                quality_report, selection_ids, stratified, wilson,
                                with_audit_selection)
from candist_core.encoder import shared_encoder
from candist_core.importing import ImportOptions, import_csv
from candist_core.records import CsvImportError, Label, LabelSchema
from candist_core.schema import load_schema
from candist_core.store import Store
from candist_core.student import StudentConfig, TrainingData, split_rows
from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
from conftest import dataset

POOL = 400


def swapped_schema(schema: LabelSchema) -> LabelSchema:
    """The same label names with each description moved to the next label: a project
    whose label descriptions were mixed up, so the offline teacher is near chance."""
    labels = schema.labels
    return LabelSchema(schema.task, tuple(
        Label(label.name, labels[(i + 1) % len(labels)].description)
        for i, label in enumerate(labels)))


def build_pool(path, *, swapped: bool = False, gold: bool = True) -> None:
    """A TREC pool of POOL texts annotated by the offline teacher (CA_all)."""
    trec = dataset("trec")
    frame = pd.read_csv(trec / "train.csv", dtype=str, keep_default_na=False)
    frame = frame.sample(n=POOL, random_state=0)
    csv = path.with_suffix(".csv")
    frame.to_csv(csv, index=False)
    schema = load_schema(trec / "labels.json")
    with Store(path) as store:
        project = store.create_project("trec", swapped_schema(schema) if swapped else schema)
        import_csv(store, project.id, csv,
                   options=ImportOptions(gold_col="label" if gold else None))
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all"))


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    base = tmp_path_factory.mktemp("pools")
    made = {}
    for name, kw in {"trec": {}, "swapped": {"swapped": True},
                     "swapped_no_gold": {"swapped": True, "gold": False},
                     "no_gold": {"gold": False}}.items():
        build_pool(base / f"{name}.db", **kw)
        made[name] = base / f"{name}.db"
    return made


@pytest.fixture
def pool(pools, tmp_path):
    """Open a fresh copy of a prepared pool: ``pool("trec")``."""
    opened = []

    def open_pool(name: str) -> Store:
        path = tmp_path / f"{name}-{len(opened)}.db"
        shutil.copy(pools[name], path)
        store = Store(path)
        opened.append(store)
        return store
    yield open_pool
    for store in opened:
        store.close()


def trec_gold() -> dict[str, str]:
    frame = pd.read_csv(dataset("trec") / "train.csv", dtype=str, keep_default_na=False)
    return dict(zip(frame["text"], frame["label"]))


def audit_with_gold(store, project_id: int, n: int, *, seed: int = 0) -> list[int]:
    """A simulated reviewer: the audit texts get their gold labels, blind."""
    gold = trec_gold()
    ids = store.draw_audit(project_id, n, seed=seed)
    for sample in store.samples(project_id, ids=ids):
        store.record_decision(project_id, sample.id, action="label", label=gold[sample.text],
                              audit=True, who="auditor")
    return ids


# ------------------------------------------------------------------ Wilson intervals
def test_wilson_interval_matches_the_worked_example():
    # 8 of 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416 = 0.71674,
    # half 1.96 / 1.38416 * sqrt(0.016 + 0.00096040) = 0.18436
    e = wilson(8, 10)
    assert (e.value, e.n, e.k) == (0.8, 10, 8)
    assert e.low == pytest.approx(0.4902, abs=1e-4)
    assert e.high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_interval_stays_inside_zero_and_one_and_needs_data():
    assert wilson(0, 20).low == 0.0 and wilson(0, 20).high == pytest.approx(0.1611, abs=1e-4)
    assert wilson(20, 20).high == 1.0
    assert wilson(0, 0) is None


def test_export_accuracy_counts_human_rows_right_and_the_rest_at_the_audited_rate():
    e = stratified(0.25, wilson(6, 10))
    assert e.value == pytest.approx(0.25 + 0.75 * 0.6)
    assert e.low == pytest.approx(0.25 + 0.75 * wilson(6, 10).low)
    assert e.high == pytest.approx(0.25 + 0.75 * wilson(6, 10).high)


def test_estimates_leave_out_queue_labeled_texts_and_texts_the_student_trained_on():
    def row(sid, label, teacher, student, created, queue=False):
        return {"sample_id": sid, "label": label, "teacher_label": teacher,
                "candidates": [teacher, "b"], "student_label": student,
                "created": created, "queue_labeled": queue}
    evidence = [
        row(1, "a", "a", "a", "2026-01-01T00:00"),            # before the run: trained on
        row(2, "a", "b", "b", "2026-01-01T00:00"),            # before, but held out
        row(3, "b", "a", "b", "2026-03-01T00:00"),            # after the run: unseen
        row(4, "b", "b", "a", "2026-03-01T00:00", queue=True),  # also queue-labeled
    ]
    e = audit_estimates(evidence, human_share=0.5, mean_labels=2.0, teacher_annotated=100,
                        student=True, student_started="2026-02-01T00:00",
                        held_out=frozenset({2}))
    assert (e["teacher_accuracy"].k, e["teacher_accuracy"].n) == (2, 4)   # every audit text
    assert (e["coverage"].k, e["coverage"].n) == (3, 4)   # row 2: "a" not in {b}
    assert (e["student_accuracy"].k, e["student_accuracy"].n) == (1, 2)   # rows 2 and 3
    assert e["export_accuracy"].value == pytest.approx(0.5 + 0.5 * 0.5)
    assert (e["mean_labels"].value, e["mean_labels"].low, e["mean_labels"].n) == (2.0, 2.0, 100)


# ------------------------------------------------------------------ the audit sample
def test_drawing_again_extends_the_sample_and_never_redraws(pool):
    store = pool("trec")
    project = store.get_project("trec")
    first = store.draw_audit(project.id, 30, seed=7)
    second = store.draw_audit(project.id, 20, seed=7)
    assert len(first) == 30 and len(second) == 20 and not set(first) & set(second)
    assert [s.id for s in store.audit_sample(project.id)] == first + second
    rest = store.draw_audit(project.id, 10_000, seed=7)           # runs out at the pool
    assert len(first) + len(second) + len(rest) == POOL
    again = pool("trec")                                            # same seed, same texts
    assert again.draw_audit(project.id, 30, seed=7) == first


def test_audit_decisions_are_kept_apart_from_queue_decisions(pool):
    store = pool("no_gold")
    project = store.get_project("trec")
    ids = store.draw_audit(project.id, 3, seed=0)
    outside = next(s.id for s in store.samples(project.id) if s.id not in ids)
    store.record_decision(project.id, outside, action="label", label="Human", who="queue")
    store.record_decision(project.id, ids[0], action="label", label="Human", audit=True,
                          who="auditor")
    store.record_decision(project.id, ids[1], action="skip", audit=True, who="auditor")
    assert [s.id for s in store.audit_queue(project.id)] == [ids[2]]
    assert {sid: (d.action, d.audit) for sid, d in store.audit_decisions(project.id).items()} \
        == {ids[0]: ("label", True), ids[1]: ("skip", True)}
    assert store.current_decisions(project.id)[outside].audit is False
    assert store.audit_status(project.id) == {"drawn": 3, "labeled": 1, "skipped": 1,
                                              "left": 1}
    report = quality_report(store, project.id)
    assert report.audited == 1 and report.estimates["teacher_accuracy"].n == 1
    store.undo_decision(project.id, who="auditor")                 # the skip comes back
    assert [s.id for s in store.audit_queue(project.id)] == [ids[1], ids[2]]


def test_audit_intervals_hold_the_gold_figures_of_the_pool(pool):
    store = pool("trec")
    project = store.get_project("trec")
    audit_with_gold(store, project.id, 100, seed=3)
    report = quality_report(store, project.id)
    run = store.latest_teacher_run(project.id)
    n, right, covered = store.gold_agreement(run.id)
    e = report.estimates
    assert report.audited == 100 and e["teacher_accuracy"].n == 100
    assert e["teacher_accuracy"].contains(right / n)
    assert e["coverage"].contains(covered / n)
    rows = list(store.export_rows(project.id))
    exported = [r.human_label if r.human_action == "label" else r.teacher_label for r in rows]
    export_gold = sum(x == r.gold for x, r in zip(exported, rows)) / len(rows)
    assert e["export_accuracy"].contains(export_gold)
    assert e["student_accuracy"] is None                            # no student yet
    assert report.sentences["export_accuracy"].startswith("export: ")
    assert report.sentences["export_accuracy"].endswith("estimated from 100 audited texts)")
    assert report.to_json()["interval"] == "wilson 95%"


# ------------------------------------------------------------------ the gate
def test_the_gate_fires_on_a_near_chance_teacher_judged_by_gold_labels(pool):
    store = pool("swapped")
    report = quality_report(store, store.get_project("trec").id)
    assert report.judged_on == "gold"
    assert report.gate.startswith("Teacher quality gate: the teacher is close to guessing: "
                                  "its top label is right ")
    assert "(chance: 17%)" in report.gate and "Use an LLM teacher" in report.gate
    assert report.lines()[0] == report.gate


def test_the_gate_fires_on_a_near_chance_teacher_judged_by_the_audit(pool):
    store = pool("swapped_no_gold")
    project = store.get_project("trec")
    audit_with_gold(store, project.id, GATE_MIN_AUDIT - 1)
    assert quality_report(store, project.id).gate is None          # too few to judge
    audit_with_gold(store, project.id, 1)
    report = quality_report(store, project.id)
    assert report.judged_on == "audit" and report.hint is None
    assert f"(from {GATE_MIN_AUDIT} audited texts)" in report.gate


def test_the_gate_does_not_fire_on_trec_with_the_offline_teacher(pool):
    store = pool("trec")
    project = store.get_project("trec")
    assert quality_report(store, project.id).gate is None
    audit_with_gold(store, project.id, 60)
    report = quality_report(store, project.id)
    assert (report.judged_on, report.gate) == ("audit", None)


def test_without_gold_or_audit_the_quality_is_unknown_and_the_hint_says_how_to_measure(pool):
    store = pool("no_gold")
    project = store.get_project("trec")
    report = quality_report(store, project.id)
    assert report.gate is None and report.estimates["teacher_accuracy"] is None
    assert report.hint == ("Quality unknown: there are no gold labels and no audit yet. "
                           "Audit ~50 randomly drawn texts (Review page, Audit mode, or "
                           "'audit --draw 50') to measure how right the labels are.")
    assert report.to_json()["n"] == 0 and report.to_json()["export_accuracy"] is None


# ------------------------------------------------------------------ epoch selection
def test_with_20_audit_labels_half_of_them_select_the_epoch(pool):
    store = pool("no_gold")
    project = store.get_project("trec")
    config = StudentConfig()
    audit_with_gold(store, project.id, 19)
    assert with_audit_selection(store, project.id, config) is config
    audit_with_gold(store, project.id, 41)
    ids = selection_ids(store, project.id)
    assert len(ids) == 30 and set(ids) <= set(store.audit_decisions(project.id))
    assert with_audit_selection(store, project.id, config).validation_ids == ids


def test_split_rows_validates_on_audited_rows_before_other_human_rows():
    n, c = 100, 3
    human = torch.full((n,), -1)
    human[:60] = 0                                  # 60 human labels, 25 of them audited
    data = TrainingData(list(range(1000, 1000 + n)), ["t"] * n, ["a", "b", "c"],
                        torch.ones((n, c), dtype=torch.bool), human, torch.full((n,), -1))
    audited = tuple(range(1035, 1060))
    split = split_rows(data, seed=0, min_human_validation=20, holdout=0.1, max_holdout=500,
                       validation_ids=audited)
    assert split.validation == "audit" and split.val == list(range(35, 60))
    assert not set(split.val) & set(split.train)
    few = split_rows(data, seed=0, min_human_validation=20, holdout=0.1, max_holdout=500,
                     validation_ids=audited[:19])
    assert few.validation == "human"


# ------------------------------------------------------------------ decisions from a file
def test_a_decision_file_is_checked_whole_before_anything_is_written():
    ext_ids, names = {"q1": 1, "q2": 2, "q3": 3}, ["Human", "Location"]
    rows = [{"id": "q1", "label": " human "}, {"id": "q2", "label": ""},
            {"id": "q3", "label": "Location"}]
    plan = plan_decisions(rows, source="f.csv", ext_ids=ext_ids, names=names)
    assert (plan.labels, plan.blank_rows) == ({1: "Human", 3: "Location"}, [2])
    with pytest.raises(CsvImportError, match=r"^Unknown id 'q9' in f.csv \(row 2\): ids are "
                                             r"the export's id column\.$"):
        plan_decisions([rows[0], {"id": "q9", "label": "Human"}], source="f.csv",
                       ext_ids=ext_ids, names=names)
    with pytest.raises(CsvImportError, match=r"^Unknown label 'Place' in f.csv \(row 1\): "
                                             r"use one of Human, Location\.$"):
        plan_decisions([{"id": "q1", "label": "Place"}], source="f.csv", ext_ids=ext_ids,
                       names=names)
    with pytest.raises(CsvImportError, match="is not in the audit sample"):
        plan_decisions(rows, source="f.csv", ext_ids=ext_ids, names=names, audit_ids={1})
    with pytest.raises(CsvImportError, match=r"appears twice in f.csv \(rows 1 and 2\)"):
        plan_decisions([rows[0], rows[0]], source="f.csv", ext_ids=ext_ids, names=names)
