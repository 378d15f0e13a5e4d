"""The bad-input catalogue: every file, schema, name, path and setting a user can get wrong,
run through the real CLI entry point against a real SQLite file, with the exact line the
user reads asserted, and nothing half-imported when the input is refused."""
from __future__ import annotations

import json
from typing import NamedTuple

import pytest

from candist_core.cli import main
from candist_core.schema import build_schema
from candist_core.store import Store

PROJECT = ["--db", "{d}/p.db", "--project", "p"]
IMPORT = ["import", *PROJECT, "--csv", "{d}/in.csv"]
IMPORT_JSONL = ["import", *PROJECT, "--csv", "{d}/in.jsonl"]
IMPORT_PARQUET = ["import", *PROJECT, "--csv", "{d}/in.parquet"]
INIT = ["init", "--db", "{d}/n.db", "--project", "n", "--labels", "{d}/labels.json"]
EXPORT = ["export", *PROJECT]
DISTILL = ["distill", *PROJECT]
NAME_RULE = ("use letters, digits, spaces, '.', '-' or '_' (at most 100 characters, no path "
             "separators and no '..').")
BIG = "word " * 200_000                     # a 1-MB single text


def parquet(columns: dict) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


class Case(NamedTuple):
    name: str
    files: dict            # file name under the case folder -> bytes (or a zero-arg function)
    argv: list             # "{d}" is the case folder, which holds p.db with project "p"
    code: int              # exit status
    lines: list            # exactly what is printed (stdout lines, then stderr lines)
    imported: int = 0      # samples in project "p" afterwards


def labels(value) -> bytes:
    return json.dumps(value).encode()


def hundred_thousand_rows() -> bytes:
    return ("text\n" + "\n".join(f'"row {i}, with a comma"' for i in range(100_000))
            + "\n").encode()


CATALOGUE = [
    # ---------------------------------------------------------------- CSV files refused
    Case("empty file", {"in.csv": b""}, IMPORT, 2, ["error: CSV file {d}/in.csv is empty."]),
    Case("blank lines only", {"in.csv": b"\n\n  \n"}, IMPORT, 2,
         ["error: CSV file {d}/in.csv is empty."]),
    Case("header only", {"in.csv": b"text,label\n"}, IMPORT, 2,
         ["error: CSV file {d}/in.csv has a header but no data rows."]),
    Case("not UTF-8", {"in.csv": b"text\ncaf\xe9\n"}, IMPORT, 2,
         ["error: CSV file {d}/in.csv is not UTF-8: invalid byte 0xe9 at offset 8. Save it as "
          "UTF-8, or name its encoding (for example --encoding cp1252 or --encoding "
          "latin-1)."]),
    Case("unknown encoding", {"in.csv": b"text\nx\n"}, IMPORT + ["--encoding", "klingon"], 2,
         ["error: Unknown encoding 'klingon'."]),
    Case("missing text column", {"in.csv": b"body,label\nx,pos\n"}, IMPORT, 2,
         ["error: The text column 'text' is not in {d}/in.csv. Columns found: 'body', "
          "'label'."]),
    Case("semicolon delimiter", {"in.csv": b"text;label\nx;pos\n"}, IMPORT, 2,
         ["error: The text column 'text' is not in {d}/in.csv. Columns found: 'text;label'. "
          "The header looks separated by semicolons, not by ',': choose that delimiter."]),
    Case("tab delimiter", {"in.csv": b"text\tlabel\nx\tpos\n"}, IMPORT, 2,
         ["error: The text column 'text' is not in {d}/in.csv. Columns found: "
          "'text\\tlabel'. The header looks separated by tabs, not by ',': choose that "
          "delimiter."]),
    Case("missing gold column", {"in.csv": b"text\nx\n"}, IMPORT + ["--gold-col", "gold"], 2,
         ["error: The gold-label column 'gold' is not in {d}/in.csv. Columns found: "
          "'text'."]),
    Case("missing id column", {"in.csv": b"text\nx\n"}, IMPORT + ["--id-col", "id"], 2,
         ["error: The id column 'id' is not in {d}/in.csv. Columns found: 'text'."]),
    Case("ragged rows", {"in.csv": b"text,label\na,pos\nb,neg,extra,more\n"}, IMPORT, 2,
         ["error: CSV file {d}/in.csv is malformed: Expected 2 fields in line 3, saw 4. "
          "Check the quoting and the delimiter or leave the malformed lines out ('Skip "
          "malformed lines' on the Data page, --skip-bad-lines on the command line)."]),
    Case("unclosed quote", {"in.csv": b'text\n"never closed\n'}, IMPORT, 2,
         ["error: CSV file {d}/in.csv is malformed: EOF inside string starting at row 1. "
          "Check the quoting and the delimiter."]),
    Case("file not found", {}, IMPORT, 2, ["error: CSV file not found: {d}/in.csv"]),
    Case("unknown project", {"in.csv": b"text\nx\n"},
         ["import", "--db", "{d}/p.db", "--project", "q", "--csv", "{d}/in.csv"], 2,
         ["error: No project named 'q' in {d}/p.db. Known projects: p."]),
    Case("database file missing", {}, ["metrics", "--db", "{d}/none.db", "--project", "p"], 2,
         ["error: Database {d}/none.db does not exist: create it with 'init'."]),
    # ----------------------------------------- CSV files imported, with what was done said
    Case("UTF-8 with BOM", {"in.csv": b"\xef\xbb\xbftext\ncaf\xc3\xa9\n"}, IMPORT, 0,
         ["Imported 1 of 1 rows (0 already present)."], 1),
    Case("cp1252 named", {"in.csv": "text\ncafé\n".encode("cp1252")},
         IMPORT + ["--encoding", "cp1252"], 0, ["Imported 1 of 1 rows (0 already present)."],
         1),
    Case("embedded newlines and quotes", {"in.csv": b'text\n"line one\nline ""two"", end"\n'},
         IMPORT, 0, ["Imported 1 of 1 rows (0 already present)."], 1),
    Case("NUL bytes", {"in.csv": b"text\nab\x00c\n"}, IMPORT, 0,
         ["Imported 1 of 1 rows (0 already present).",
          "warning: 1 NUL byte(s) were removed from the file."], 1),
    Case("empty and whitespace texts", {"in.csv": b'text\n""\n"   "\nfine\n'}, IMPORT, 0,
         ["Imported 1 of 3 rows (0 already present).",
          "warning: 2 row(s) with an empty text were skipped (rows 1, 2)."], 1),
    Case("gold map without '='", {"in.csv": b"text,label\na,p\n"},
         IMPORT + ["--gold-col", "label", "--gold-map", "p:pos"], 2,
         ["error: --gold-map: 'p:pos' is not VALUE=LABEL."]),
    Case("gold values mapped to labels", {"in.csv": b"text,label\na,p\nb,n\n"},
         IMPORT + ["--gold-col", "label", "--gold-map", "p=pos, n=neg"], 0,
         ["Imported 2 of 2 rows (0 already present)."], 2),
    Case("ragged rows left out on request",
         {"in.csv": b"text,label\na,pos\nb,neg,extra,more\nc,neg\n"},
         IMPORT + ["--skip-bad-lines"], 0,
         ["Imported 2 of 2 rows (0 already present).",
          "warning: 1 malformed line(s) were left out (file lines 3: the wrong number of "
          "fields). Mend them and import the file again: rows already imported are not "
          "added twice."], 2),
    Case("duplicate ids", {"in.csv": b"id,text\n1,a\n1,b\n2,c\n"}, IMPORT + ["--id-col", "id"],
         0, ["Imported 2 of 3 rows (0 already present).",
             "warning: 1 row(s) repeat an id seen earlier in the file and were skipped "
             "(ids 1)."], 2),
    Case("gold labels not in the schema", {"in.csv": b"text,label\na,pos\nb,maybe\nc,maybe\n"},
         IMPORT + ["--gold-col", "label"], 0,
         ["Imported 3 of 3 rows (0 already present).",
          "warning: 2 gold label(s) are not in the label schema and were dropped: "
          "'maybe' x2."], 3),
    Case("1-MB single text", {"in.csv": f"text\n{BIG}\n".encode()}, IMPORT, 0,
         ["Imported 1 of 1 rows (0 already present).",
          "warning: 1 text(s) are longer than the limit and will be truncated by the student "
          "(rows 1)."], 1),
    Case("same text twice", {"in.csv": b"text\nsame\nsame\n"}, IMPORT, 0,
         ["Imported 2 of 2 rows (0 already present).",
          "warning: 1 row(s) repeat a text seen earlier in the file; each copy is kept as a "
          "sample of its own (rows 2)."], 2),
    pytest.param(Case("100,000 rows", {"in.csv": hundred_thousand_rows}, IMPORT, 0,
                      ["Imported 100000 of 100000 rows (0 already present)."], 100_000),
                 marks=pytest.mark.slow),
    # ------------------------------------------------- JSONL and Parquet files
    Case("JSONL broken line", {"in.jsonl": b'{"text": "a"}\n{"text": "b"\n'},
         IMPORT_JSONL, 2, ["error: JSONL file {d}/in.jsonl line 2 is not valid JSON: "
                           "Expecting ',' delimiter at column 13."]),
    Case("JSONL line without the text field", {"in.jsonl": b'{"text": "a"}\n{"body": "b"}\n'},
         IMPORT_JSONL, 2, ["error: JSONL file {d}/in.jsonl line 2 has no 'text' field."]),
    Case("JSONL line that is not an object", {"in.jsonl": b'{"text": "a"}\n["b"]\n'},
         IMPORT_JSONL, 2, ["error: JSONL file {d}/in.jsonl line 2 is not a JSON object (it is "
                           "a list)."]),
    Case("JSONL text that is a number", {"in.jsonl": b'{"text": 7}\n'}, IMPORT_JSONL, 2,
         ["error: JSONL file {d}/in.jsonl line 1: 'text' is a number, not text."]),
    Case("JSONL with blank lines and numeric ids", {"in.jsonl": b'{"id": 1, "text": "a"}\n\n'
                                                   b'{"id": 2, "text": "b"}\n'},
         IMPORT_JSONL + ["--id-col", "id"], 0, ["Imported 2 of 2 rows (0 already present)."],
         2),
    Case("Parquet without the text column", {"in.parquet": lambda: parquet({"body": ["a"]})},
         IMPORT_PARQUET, 2, ["error: The text column 'text' is not in {d}/in.parquet. "
                             "Columns found: 'body'."]),
    Case("Parquet text column of numbers", {"in.parquet": lambda: parquet({"text": [1, 2]})},
         IMPORT_PARQUET, 2, ["error: The text column 'text' of {d}/in.parquet holds int64, "
                             "not text."]),
    Case("Parquet file that is not Parquet", {"in.parquet": b"text\na\n"}, IMPORT_PARQUET, 2,
         ["error: Parquet file {d}/in.parquet cannot be read: it is not a Parquet file, or it "
          "is damaged."]),
    # ---------------------------------------------------------------- label schemas
    Case("one label", {"labels.json": labels({"task": "t", "labels": ["only"]})}, INIT, 2,
         ["error: A label schema needs at least 2 labels, got 1."]),
    Case("no labels", {"labels.json": labels({"task": "t", "labels": []})}, INIT, 2,
         ["error: A label schema needs at least 2 labels, got 0."]),
    Case("duplicate labels", {"labels.json": labels({"task": "t", "labels": ["Spam",
                                                                             " spam "]})},
         INIT, 2, ["error: Duplicate label name 'spam' (same as 'Spam' after trimming and "
                   "ignoring case)."]),
    Case("empty label name", {"labels.json": labels({"task": "t", "labels": ["a", "  "]})},
         INIT, 2, ["error: Label #2 has an empty name."]),
    Case("label without a name", {"labels.json": labels({"task": "t", "labels": [
        {"description": "x"}, "b"]})}, INIT, 2, ["error: Label #1 has no 'name' field."]),
    Case("label that is a number", {"labels.json": labels({"task": "t", "labels": [3, "b"]})},
         INIT, 2, ["error: Label #1 must be an object with a 'name', got int."]),
    Case("1,001 labels", {"labels.json": labels({"task": "t", "labels": [
        f"l{i}" for i in range(1001)]})}, INIT, 2,
         ["error: A label schema may have at most 1000 labels, got 1001."]),
    Case("500 labels", {"labels.json": labels({"task": "t", "labels": [
        f"l{i}" for i in range(500)]})}, INIT, 0,
         ["Created project 'n' with 500 labels in {d}/n.db."]),
    Case("labels.json malformed", {"labels.json": b'{"labels": ['}, INIT, 2,
         ["error: Label file {d}/labels.json is not valid JSON: Expecting value at line 1, "
          "column 13."]),
    Case("labels.json a list", {"labels.json": labels([1, 2])}, INIT, 2,
         ["error: labels.json must hold an object with 'task' and 'labels'."]),
    Case("labels.json without labels", {"labels.json": labels({"task": "x"})}, INIT, 2,
         ["error: labels.json must have a 'labels' list."]),
    Case("task not text", {"labels.json": labels({"task": 3, "labels": ["a", "b"]})}, INIT, 2,
         ["error: labels.json: 'task' must be text."]),
    Case("labels.json missing", {}, INIT, 2, ["error: Label file not found: {d}/labels.json"]),
    # ---------------------------------------------------------------- project names
    Case("project name with a slash", {"labels.json": labels({"task": "t", "labels": ["a",
                                                                                      "b"]})},
         ["init", "--db", "{d}/n.db", "--project", "a/b", "--labels", "{d}/labels.json"], 2,
         [f"error: Project name 'a/b' is not allowed: {NAME_RULE}"]),
    Case("project name '..'", {"labels.json": labels({"task": "t", "labels": ["a", "b"]})},
         ["init", "--db", "{d}/n.db", "--project", "../up", "--labels", "{d}/labels.json"], 2,
         [f"error: Project name '../up' is not allowed: {NAME_RULE}"]),
    Case("project name with a backslash", {"labels.json": labels({"task": "t", "labels": [
        "a", "b"]})}, ["init", "--db", "{d}/n.db", "--project", "a\\b", "--labels",
                       "{d}/labels.json"], 2,
         [f"error: Project name 'a\\\\b' is not allowed: {NAME_RULE}"]),
    Case("empty project name", {"labels.json": labels({"task": "t", "labels": ["a", "b"]})},
         ["init", "--db", "{d}/n.db", "--project", "  ", "--labels", "{d}/labels.json"], 2,
         ["error: A project name cannot be empty."]),
    Case("project that exists", {"labels.json": labels({"task": "t", "labels": ["a", "b"]})},
         ["init", "--db", "{d}/p.db", "--project", "p", "--labels", "{d}/labels.json"], 2,
         ["error: Project 'p' already exists in {d}/p.db."]),
    # ---------------------------------------------------------------- exports
    Case("export path outside the export folder", {}, EXPORT + [
        "--out", "{d}/../elsewhere.csv", "--export-dir", "{d}/exports"], 2,
         ["error: Export path {d}/../elsewhere.csv is outside the export folder "
          "{d}/exports."]),
    Case("export path is a folder", {}, EXPORT + ["--out", "{d}"], 2,
         ["error: Export path {d} is a folder; give a file name ending in .csv."]),
    Case("export folder missing", {}, EXPORT + ["--out", "{d}/nope/x.csv"], 2,
         ["error: Folder {d}/nope does not exist."]),
    Case("confidence threshold out of range", {}, EXPORT + ["--out", "{d}/x.csv",
                                                            "--min-confidence", "2"], 2,
         ["error: --min-confidence must be between 0 and 1, got 2.0."]),
    Case("unknown label source", {}, EXPORT + ["--out", "{d}/x.csv", "--sources",
                                               "human,robot"], 2,
         ["error: Label sources must be among human, student, teacher; got human, robot."]),
    # ---------------------------------------------------------------- distillation settings
    Case("distill before any annotation", {}, DISTILL, 2,
         ["error: No teacher annotations and no human labels yet: run 'annotate' first, or "
          "review some samples."]),
    Case("max length out of range", {}, DISTILL + ["--max-length", "4"], 2,
         ["error: --max-length must be between 8 and 512."]),
    Case("learning rate out of range", {}, DISTILL + ["--lr", "5"], 2,
         ["error: --lr must be between 0 and 1."]),
    Case("zero epochs", {}, DISTILL + ["--epochs", "0"], 2,
         ["error: Epochs and batch size must be at least 1."]),
    Case("unknown head start", {}, DISTILL + ["--head", "magic"], 2,
         ["error: Unknown head start 'magic': use auto, random, prototypes."]),
    Case("negative extra epochs", {}, DISTILL + ["--extra-epochs", "-1"], 2,
         ["error: Extra epochs must be 0 (off) or more."]),
]


def _case(param) -> Case:
    return param if isinstance(param, Case) else param.values[0]


@pytest.mark.parametrize("case", CATALOGUE, ids=[_case(c).name for c in CATALOGUE])
def test_every_bad_input_gets_its_exact_message_and_loses_nothing(case, tmp_path, capfd,
                                                                 tally):
    with Store(tmp_path / "p.db") as store:
        store.create_project("p", build_schema("t", ["pos", "neg"]))
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content() if callable(content) else content)
    fill = lambda s: s.replace("{d}", str(tmp_path))  # noqa: E731
    code = main([fill(a) for a in case.argv])
    out, err = capfd.readouterr()
    assert code == case.code
    assert out.splitlines() + err.splitlines() == [fill(line) for line in case.lines]
    with Store(tmp_path / "p.db") as store:
        assert store.count_samples(store.get_project("p").id) == case.imported
        assert store.integrity_check() == "ok"
    tally("bad_input", case.name)


def test_the_catalogue_covers_at_least_thirty_inputs():
    assert len({_case(c).name for c in CATALOGUE}) >= 30


# ------------------------------------------------------------------ predict (#16)
PREDICT = ["predict", "--model", "{m}", "--in", "{d}/in.csv", "--out", "{d}/out.csv"]
NO_STUDENT = ("error: Give the student as --model DIR, or as --project NAME (with --db, and "
              "--run ID for a run other than the latest).")
PREDICT_CATALOGUE = [
    Case("predict: both --model and --project", {},
         ["predict", "--model", "{m}", "--db", "{d}/p.db", "--project", "p", "--in",
          "{d}/in.csv", "--out", "{d}/out.csv"], 2, [NO_STUDENT]),
    Case("predict: no student named", {}, ["predict", "--in", "{d}/in.csv", "--out",
                                           "{d}/out.csv"], 2, [NO_STUDENT]),
    Case("predict: model folder missing", {"in.csv": b"text\nhi\n"},
         ["predict", "--model", "{d}/nope", "--in", "{d}/in.csv", "--out", "{d}/out.csv"], 2,
         ["error: No model folder at {d}/nope."]),
    Case("predict: folder is not a model", {"in.csv": b"text\nhi\n"},
         ["predict", "--model", "{d}", "--in", "{d}/in.csv", "--out", "{d}/out.csv"], 2,
         ["error: {d} is not a saved student (config.json missing)."]),
    Case("predict: project without a student", {"in.csv": b"text\nhi\n"},
         ["predict", "--db", "{d}/p.db", "--project", "p", "--in", "{d}/in.csv", "--out",
          "{d}/out.csv"], 2,
         ["error: This project has no trained student yet: run 'distill' first."]),
    Case("predict: unknown run", {"in.csv": b"text\nhi\n"},
         ["predict", "--db", "{d}/p.db", "--project", "p", "--run", "7", "--in",
          "{d}/in.csv", "--out", "{d}/out.csv"], 2,
         ["error: Student run #7 is not a run of this project (its runs: none)."]),
    Case("predict: input missing", {}, PREDICT, 2, ["error: CSV file not found: {d}/in.csv"]),
    Case("predict: no text column", {"in.csv": b"body\nhi\n"}, PREDICT, 2,
         ["error: The text column 'text' is not in {d}/in.csv. Columns found: 'body'."]),
    Case("predict: broken JSONL line", {"in.jsonl": b'{"text": "a"}\n{"text": \n'},
         ["predict", "--model", "{m}", "--in", "{d}/in.jsonl", "--out", "{d}/out.csv"], 2,
         ["error: JSONL file {d}/in.jsonl line 2 is not valid JSON: Expecting value at "
          "column 10."]),
    Case("predict: Parquet text column of numbers", {"in.parquet": lambda: parquet(
        {"text": [1, 2]})},
         ["predict", "--model", "{m}", "--in", "{d}/in.parquet", "--out", "{d}/out.csv"], 2,
         ["error: The text column 'text' of {d}/in.parquet holds int64, not text."]),
    Case("predict: output folder missing", {"in.csv": b"text\nhi\n"},
         ["predict", "--model", "{m}", "--in", "{d}/in.csv", "--out", "{d}/nope/out.csv"], 2,
         ["error: Folder {d}/nope does not exist."]),
    Case("predict: output is the input", {"in.csv": b"text\nhi\n"},
         ["predict", "--model", "{m}", "--in", "{d}/in.csv", "--out", "{d}/in.csv"], 2,
         ["error: --out is the input file: give a new file name, the input is never "
          "overwritten."]),
    Case("predict: zero batch size", {"in.csv": b"text\nhi\n"},
         PREDICT + ["--batch-size", "0"], 2, ["error: --batch-size must be at least 1, got 0."]),
]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from candist_core.model_dir import save_model_dir
    from test_student import tiny_student
    model, tokenizer = tiny_student(2)
    return save_model_dir(model, tokenizer, ["pos", "neg"],
                          tmp_path_factory.mktemp("model") / "student", max_tokens=16)


@pytest.mark.parametrize("case", PREDICT_CATALOGUE, ids=[c.name for c in PREDICT_CATALOGUE])
def test_predict_refuses_bad_input_with_one_line_and_writes_nothing(case, tmp_path, capfd,
                                                                   tally, tiny_model_dir):
    with Store(tmp_path / "p.db") as store:
        store.create_project("p", build_schema("t", ["pos", "neg"]))
    before = {}
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content() if callable(content) else content)
        before[name] = (tmp_path / name).read_bytes()
    fill = lambda s: s.replace("{d}", str(tmp_path)).replace("{m}", str(tiny_model_dir))  # noqa: E731
    code = main([fill(a) for a in case.argv])
    out, err = capfd.readouterr()
    assert code == case.code
    assert out.splitlines() + err.splitlines() == [fill(line) for line in case.lines]
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob("*.part"))
    assert {n: (tmp_path / n).read_bytes() for n in before} == before   # inputs untouched
    tally("bad_input", case.name)


def test_predict_writes_the_labelled_file_when_the_input_is_good(tmp_path, tiny_model_dir):
    (tmp_path / "in.csv").write_bytes(b"id,text,label\n1,=cmd|calc,x\n2,,y\n3,fine text,z\n")
    code = main(["predict", "--model", str(tiny_model_dir), "--in", str(tmp_path / "in.csv"),
                 "--out", str(tmp_path / "out.csv")])
    assert code == 0
    import pandas as pd
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(out.columns) == ["id", "text", "input_label", "label", "confidence",
                                 "top_labels", "top_probs"]
    assert out["text"].tolist() == ["'=cmd|calc", "", "fine text"]    # formula neutralised
    assert out["label"].tolist()[1] == "" and out["confidence"].tolist()[1] == ""
    assert set(out["label"].tolist()[0::2]) <= {"pos", "neg"}
