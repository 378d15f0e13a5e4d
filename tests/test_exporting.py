"""Export: label source policy, confidence threshold, spreadsheet safety, round trip."""
import csv

import numpy as np
import pandas as pd
import pytest

from candist_core.metrics import entropy
from candist_core.exporting import ExportOptions, neutralise, write_export
from candist_core.records import ExportError
from candist_core.schema import build_schema

SCHEMA = build_schema("task", ["a", "b"])


@pytest.fixture
def filled(store):
    """Four samples: one reviewed, one with student+teacher, one teacher only, one bare."""
    project = store.create_project("p", SCHEMA)
    store.insert_samples(project.id, [("1", "=SUM(A1)", "a"), ("2", "plain, text", "b"),
                                      ("3", "@user hi", None), ("4", "-5 degrees", None)])
    ids = [s.id for s in store.samples(project.id)]
    teacher = store.create_teacher_run(project.id, teacher="offline", model="m",
                                       strategy="ca_all", params={})
    store.record_annotations(teacher, [
        {"sample_id": ids[0], "candidates": ["b", "a"], "label": "b", "confidence": 0.5},
        {"sample_id": ids[1], "candidates": ["a"], "label": "a", "confidence": 0.9},
        {"sample_id": ids[2], "candidates": ["b"], "label": "b", "confidence": 0.3}])
    student = store.create_student_run(project.id, teacher_run_id=teacher, method="candist",
                                       config={})
    flags = np.zeros(2, dtype=bool)
    probs = np.array([[0.4, 0.6], [0.2, 0.8]])
    store.write_predictions(student, ids[:2], probs, SCHEMA.names, entropy=entropy(probs),
                            out_of_candidate=flags, high_confidence=flags, small_loss=flags)
    store.finish_student_run(student, status="done")
    store.record_decision(project.id, ids[0], action="label", label="a")
    return project


def read(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_human_then_student_then_teacher(store, filled, tmp_path):
    out = tmp_path / "out.csv"
    summary = write_export(store, filled.id, out)
    frame = read(out)
    assert frame.columns.tolist() == ["id", "text", "label", "label_source", "confidence",
                                      "candidates", "gold", "annotators"]
    assert frame["annotators"].tolist() == ["1", "0", "0", "0"]
    assert frame["label"].tolist() == ["a", "b", "b", ""]
    assert frame["label_source"].tolist() == ["human", "student", "teacher", "none"]
    assert frame["confidence"].tolist() == ["1.0000", "0.8000", "0.3000", ""]
    assert frame["candidates"].tolist()[:3] == ['["b", "a"]', '["a"]', '["b"]']
    assert frame["gold"].tolist() == ["a", "b", "", ""]
    assert summary.to_dict() == {"rows": 4, "from_human": 1, "from_student": 1,
                                 "from_teacher": 1, "from_none": 1}


def test_formula_cells_are_neutralised_and_other_text_is_unchanged(store, filled, tmp_path):
    out = tmp_path / "out.csv"
    write_export(store, filled.id, out)
    assert read(out)["text"].tolist() == ["'=SUM(A1)", "plain, text", "'@user hi",
                                          "'-5 degrees"]


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@x", "\tx", "\rx"])
def test_every_formula_prefix_is_neutralised(cell):
    assert neutralise(cell) == "'" + cell


def test_min_confidence_blanks_or_drops_low_rows_but_never_human_ones(store, filled, tmp_path):
    out = tmp_path / "out.csv"
    write_export(store, filled.id, out, options=ExportOptions(min_confidence=0.85))
    assert read(out)["label_source"].tolist() == ["human", "none", "none", "none"]
    write_export(store, filled.id, out, options=ExportOptions(min_confidence=0.5, below="drop"))
    assert read(out)["id"].tolist() == ["1", "2"]


def test_sources_can_skip_the_student(store, filled, tmp_path):
    out = tmp_path / "out.csv"
    write_export(store, filled.id, out, options=ExportOptions(sources=("human", "teacher")))
    assert read(out)["label_source"].tolist() == ["human", "teacher", "teacher", "none"]


def test_export_path_checks(store, filled, tmp_path):
    with pytest.raises(ExportError) as err:
        write_export(store, filled.id, tmp_path / "nope" / "x.csv")
    assert str(err.value) == f"Folder {tmp_path / 'nope'} does not exist."
    with pytest.raises(ExportError) as err:
        write_export(store, filled.id, tmp_path / ".." / "x.csv", allowed_dir=tmp_path)
    assert "is outside the export folder" in str(err.value)
    with pytest.raises(ExportError) as err:
        ExportOptions(min_confidence=2)
    assert str(err.value) == "--min-confidence must be between 0 and 1, got 2."


def test_the_file_is_plain_csv(store, filled, tmp_path):
    out = tmp_path / "out.csv"
    write_export(store, filled.id, out)
    rows = list(csv.reader(out.open(encoding="utf-8", newline="")))
    assert len(rows) == 5 and rows[2][1] == "plain, text"
    assert not (tmp_path / "out.csv.part").exists()


def test_the_preview_shows_the_files_first_rows_even_when_low_rows_are_left_out(store, filled):
    from candist_core.exporting import export_preview
    drop = ExportOptions(min_confidence=0.5, below="drop")
    assert [r["id"] for r in export_preview(store, filled.id, options=drop, limit=2)] == \
        ["1", "2"]
    # Only the first text qualifies at 0.85: a preview of 2 reads on and finds no second.
    strict = ExportOptions(min_confidence=0.85, below="drop")
    assert [r["id"] for r in export_preview(store, filled.id, options=strict, limit=2)] == \
        ["1"]
    store.insert_samples(filled.id, [("5", "late", None)])
    late = store.samples(filled.id)[-1].id
    store.record_decision(filled.id, late, action="label", label="b")
    # The first window (2 texts) holds one qualifying row; the next one finds the fifth.
    assert [r["id"] for r in export_preview(store, filled.id, options=strict, limit=2)] == \
        ["1", "5"]


def test_the_gold_check_measures_the_labels_the_file_holds_with_its_interval(store, filled):
    from candist_core.exporting import export_gold_check
    check = export_gold_check(store, filled.id)
    # Texts 1 (human "a", gold "a") and 2 (student "b", gold "b") have a gold label; 3 and 4
    # have none, so they are in the file but not judged.
    assert (check.rows, check.with_gold, check.judged, check.right) == (4, 2, 2, 2)
    assert (check.human, check.human_right) == (1, 1)
    assert check.accuracy.value == 1.0 and check.accuracy.n == 2
    # Wilson, 2 of 2 right: centre (1 + z²/4) / (1 + z²/2), z = 1.96; low = 0.3424.
    assert round(check.accuracy.low, 4) == 0.3424 and check.accuracy.high == 1.0


def test_the_gold_check_follows_the_minimum_confidence_and_the_policy(store, filled):
    from candist_core.exporting import export_gold_check
    blank = export_gold_check(store, filled.id, options=ExportOptions(min_confidence=0.85))
    # The student's 0.8 on text 2 is under 0.85: the row stays, unlabeled, and is not judged.
    assert (blank.rows, blank.with_gold, blank.judged, blank.right) == (4, 2, 1, 1)
    drop = export_gold_check(store, filled.id,
                             options=ExportOptions(min_confidence=0.85, below="drop"))
    assert (drop.rows, drop.with_gold, drop.judged, drop.right) == (1, 1, 1, 1)
    teacher = export_gold_check(store, filled.id, options=ExportOptions(sources=("teacher",)))
    # The teacher says "b" for gold "a" and "a" for gold "b".
    assert (teacher.judged, teacher.right, teacher.human) == (2, 0, 0)
    assert teacher.accuracy.value == 0.0


def test_a_human_label_that_differs_from_gold_counts_as_wrong(store, filled):
    from candist_core.exporting import export_gold_check
    second = store.samples(filled.id)[1].id
    store.record_decision(filled.id, second, action="label", label="a")   # gold is "b"
    check = export_gold_check(store, filled.id)
    assert (check.judged, check.right, check.human, check.human_right) == (2, 1, 2, 1)
    # Wilson, 1 of 2: centre 0.5, half-width 1.96 / 2.9208 * sqrt(0.125 + 0.2401).
    assert (round(check.accuracy.low, 4), round(check.accuracy.high, 4)) == (0.0945, 0.9055)


def test_without_gold_labels_there_is_no_gold_check(store):
    from candist_core.exporting import export_gold_check
    project = store.create_project("nogold", SCHEMA)
    store.insert_samples(project.id, [("1", "a text", None)])
    assert export_gold_check(store, project.id) is None


def test_the_library_default_still_keeps_every_row_as_the_command_line_does(store, filled,
                                                                           tmp_path):
    # The `export` command's defaults are a contract: no minimum confidence, rows kept.
    from candist_core.cli import build_parser
    args = build_parser().parse_args(["export", "--db", "x.db", "--project", "p",
                                      "--out", "o.csv"])
    assert (args.min_confidence, args.below) == (0.0, "blank")
    assert (ExportOptions().min_confidence, ExportOptions().below) == (0.0, "blank")
    out = tmp_path / "out.csv"
    write_export(store, filled.id, out, options=ExportOptions(min_confidence=0.85))
    assert len(read(out)) == 4


def test_the_export_pages_one_pass_counts_and_measures_what_the_file_holds(store, filled):
    from candist_core.exporting import export_gold_check
    from candist_core.reports import export_overview
    for options in (ExportOptions(), ExportOptions(min_confidence=0.85),
                    ExportOptions(min_confidence=0.85, below="drop")):
        summary, labels, check = export_overview(store, filled.id, options=options)
        assert check == export_gold_check(store, filled.id, options=options)
        assert summary.rows == check.rows == sum(labels.values())
