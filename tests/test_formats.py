"""JSONL and Parquet beside CSV: the same export columns in every format, and a round trip
CSV -> project -> JSONL / Parquet export -> a new project that holds the same texts, ids and
labels. Through the real CLI on a TREC slice."""
import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from candist_core.store import Store
from conftest import dataset, run_cli


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A 300-text TREC project whose labels come from three sources (human, teacher,
    none), exported once per format."""
    tmp_path, trec_dir = tmp_path_factory.mktemp("formats"), dataset("trec")
    frame = pd.read_csv(trec_dir / "train.csv").sample(n=300, random_state=3)
    frame.insert(0, "id", [f"q{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "in.csv", index=False)
    db = tmp_path / "a.db"
    run_cli("init", "--db", db, "--project", "a", "--labels", trec_dir / "labels.json",
            check=True)
    run_cli("import", "--db", db, "--project", "a", "--csv", tmp_path / "in.csv",
            "--id-col", "id", "--gold-col", "label", check=True)
    with Store(db) as store:
        project = store.get_project("a")
        samples = store.samples(project.id)
        run = store.create_teacher_run(project.id, teacher="offline", model="m",
                                       strategy="ca_add", params={})
        store.record_annotations(run, [{"sample_id": s.id,
                                        "candidates": ["Description", "Entity"],
                                        "label": "Description", "confidence": 0.6}
                                       for s in samples[:200]])
        for s in samples[:20]:
            store.record_decision(project.id, s.id, action="label", label=s.gold)
    for suffix in ("csv", "jsonl", "parquet"):
        run_cli("export", "--db", db, "--project", "a", "--out", tmp_path / f"out.{suffix}",
                check=True)
    return tmp_path, frame


def test_every_format_has_the_same_columns_and_values(labelled):
    folder, _ = labelled
    csv_rows = pd.read_csv(folder / "out.csv", dtype=str, keep_default_na=False)
    jsonl_rows = [json.loads(line) for line in (folder / "out.jsonl").read_text().splitlines()]
    table = pq.read_table(folder / "out.parquet")
    columns = ["id", "text", "label", "label_source", "confidence", "candidates", "gold",
               "annotators"]
    assert csv_rows.columns.tolist() == list(jsonl_rows[0]) == table.column_names == columns
    parquet_rows = table.to_pylist()
    for i in (0, 25, 250):   # a human row, a teacher row, a row with no label
        c, j, p = csv_rows.iloc[i], jsonl_rows[i], parquet_rows[i]
        assert c["id"] == j["id"] == p["id"] and c["label"] == j["label"] == p["label"]
        assert c["label_source"] == j["label_source"] == p["label_source"]
        assert (json.loads(c["candidates"]) if c["candidates"] else None) \
            == j["candidates"] == p["candidates"]
        assert (float(c["confidence"]) if c["confidence"] else None) \
            == j["confidence"] == p["confidence"]
    assert [r["label_source"] for r in (parquet_rows[0], parquet_rows[25],
                                        parquet_rows[250])] == ["human", "teacher", "none"]
    candidates = table.schema.field("candidates").type
    assert pa.types.is_list(candidates) and pa.types.is_string(candidates.value_type)


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_an_export_re_imports_with_the_same_texts_ids_and_labels(labelled, trec_dir, suffix):
    folder, frame = labelled
    db = folder / f"b-{suffix}.db"
    run_cli("init", "--db", db, "--project", "b", "--labels", trec_dir / "labels.json",
            check=True)
    proc = run_cli("import", "--db", db, "--project", "b", "--csv", folder / f"out.{suffix}",
                   "--id-col", "id", "--gold-col", "label", "--json", check=True)
    assert json.loads(proc.stdout)["imported"] == 300
    exported = pd.read_csv(folder / "out.csv", dtype=str, keep_default_na=False)
    with Store(db) as store:
        samples = store.samples(store.get_project("b").id)
    assert [s.ext_id for s in samples] == exported["id"].tolist() == frame["id"].tolist()
    assert [s.text for s in samples] == exported["text"].tolist() == frame["text"].tolist()
    assert [s.gold or "" for s in samples] == exported["label"].tolist()


def test_a_parquet_file_written_by_pandas_shows_only_its_own_columns():
    from candist_core.importing import read_table
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", "y", None]}).iloc[[2, 0, 1]]
    buffer = io.BytesIO()
    frame.to_parquet(buffer)                 # the shuffled index is stored as a column
    table, _ = read_table(buffer.getvalue(), name="slice.parquet")
    assert table.columns.tolist() == ["text", "label"]
    assert table["text"].tolist() == ["c", "a", "b"] and table["label"].tolist() == ["", "x", "y"]
