"""The student as a deliverable: every finished run is a transformers model folder that a
bare ``pipeline`` loads in a process without CanDist, and ``predict`` labels new files with
exactly the app's scores."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from test_student import tiny_student

from candist_core.cli import main
from candist_core.distill import distill_project
from candist_core.encoder import shared_encoder
from candist_core.exporting import write_export
from candist_core.importing import ImportOptions, import_csv
from candist_core.model_dir import (
    load_model_dir,
    save_model_dir,
    to_transformers,
    zip_bytes,
)
from candist_core.predicting import PredictOptions, Predictor, predict_file
from candist_core.store import Store
from candist_core.student import StudentConfig, StudentModel
from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project

PIPELINE_SCRIPT = """
import json, sys
from transformers import pipeline
model_dir, texts = sys.argv[1], json.loads(sys.stdin.read())
classify = pipeline("text-classification", model=model_dir, trust_remote_code=True,
                    device="cpu")
scores = classify(texts, top_k=None, batch_size=8)
print(json.dumps({"candist_imported": any(m.startswith("candist_core") for m in sys.modules),
                  "scores": [{s["label"]: s["score"] for s in row} for row in scores]}))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory, trec_dir_module):
    """A 200-text TREC project, offline-annotated, with a 1-epoch student of each head."""
    root = tmp_path_factory.mktemp("students")
    frame = pd.read_csv(trec_dir_module / "train.csv").sample(n=200, random_state=0)
    frame.to_csv(root / "slice.csv", index=False)
    from candist_core.schema import load_schema
    store = Store(root / "candist.db")
    project = store.create_project("trec", load_schema(trec_dir_module / "labels.json"))
    import_csv(store, project.id, root / "slice.csv", options=ImportOptions(gold_col="label"))
    annotate_project(store, project.id, OfflineTeacher(shared_encoder()), TeacherConfig())
    runs = {head: distill_project(store, project.id, StudentConfig(epochs=1, extra_epochs=0,
                                                               head_init=head))
            for head in ("random", "prototypes")}
    yield store, project, runs, root
    store.close()


@pytest.fixture(scope="module")
def trec_dir_module():
    from conftest import dataset
    return dataset("trec")


def stored(store, run_id):
    texts = {s.id: s.text for s in store.samples(store.student_run(run_id).project_id)}
    labels = store.label_schema(store.student_run(run_id).project_id).names
    rows = store.predictions(run_id)
    return [texts[p.sample_id] for p in rows], [p.label for p in rows], \
        np.stack([p.probs for p in rows]), labels


@pytest.mark.slow
@pytest.mark.parametrize("head", ["random", "prototypes"])
def test_a_bare_transformers_pipeline_in_a_fresh_process_gives_the_apps_labels_and_probabilities(
        trained, head, tmp_path):
    store, _, runs, _ = trained
    run = store.student_run(runs[head])
    assert run.epochs[0]["head"] == head
    texts, labels, probs, names = stored(store, run.id)
    sample = list(range(0, len(texts), 4))          # 50 texts, short and long alike
    proc = subprocess.run([sys.executable, "-c", PIPELINE_SCRIPT, run.checkpoint],
                          input=json.dumps([texts[i] for i in sample]), capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["candist_imported"] is False
    for row, scores in zip(sample, out["scores"]):
        assert max(scores, key=scores.get) == labels[row]
        assert np.allclose([scores[n] for n in names], probs[row], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_the_model_folder_is_standard_and_carries_a_model_card(trained):
    store, project, runs, _ = trained
    run = store.student_run(runs["random"])
    folder = __import__("pathlib").Path(run.checkpoint)
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "modeling_candist.py", "README.md",
            "tokenizer_config.json"} <= names
    assert not (folder.parent / (folder.name + ".part")).exists()
    config = json.loads((folder / "config.json").read_text())
    schema = store.label_schema(project.id)
    assert config["id2label"] == {str(i): n for i, n in enumerate(schema.names)}
    assert config["label2id"] == {n: i for i, n in enumerate(schema.names)}
    assert config["auto_map"]["AutoModelForSequenceClassification"].startswith(
        "modeling_candist.")
    card = (folder / "README.md").read_text()
    for fact in ("trec", "offline", f"strategy {TeacherConfig().strategy}",
                 "Best epoch (chosen without gold labels): 1 of 1", "agreement with the gold",
                 *schema.names):
        assert fact in card
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes(folder)))
    assert f"{folder.name}/config.json" in archive.namelist()


@pytest.mark.slow
def test_predict_on_the_projects_own_texts_equals_the_stored_predictions(trained, tmp_path):
    store, project, runs, _ = trained
    write_export(store, project.id, tmp_path / "texts.csv")
    code = main(["predict", "--db", str(store.path), "--project", "trec",
                 "--run", str(runs["prototypes"]), "--in", str(tmp_path / "texts.csv"),
                 "--out", str(tmp_path / "labelled.jsonl"), "--batch-size", "16",
                 "--top-k", "2", "--device", "cpu"])
    assert code == 0
    rows = [json.loads(line) for line in (tmp_path / "labelled.jsonl").read_text().splitlines()]
    by_ext = {s.id: s.ext_id for s in store.samples(project.id)}
    want = {by_ext[p.sample_id]: p for p in store.predictions(runs["prototypes"])}
    assert len(rows) == len(want) == 200
    for row in rows:
        prediction = want[row["id"]]
        assert row["label"] == prediction.label
        # The file writes 4 decimals, as the export does.
        assert row["confidence"] == pytest.approx(prediction.confidence, abs=5e-5 + 1e-6)
        assert row["top_labels"][0] == prediction.label and len(row["top_probs"]) == 2
        assert row["input_label"] in ("", *store.label_schema(project.id).names)


@pytest.mark.slow
def test_predict_labels_the_trec_test_split_in_every_format(trained, tmp_path,
                                                            trec_dir_module):
    store, _, runs, _ = trained
    folder = store.student_run(runs["prototypes"]).checkpoint
    test = pd.read_csv(trec_dir_module / "test.csv")
    results = {}
    for suffix in ("csv", "jsonl", "parquet"):
        summary = predict_file(folder, trec_dir_module / "test.csv", tmp_path / f"o.{suffix}",
                               options=PredictOptions(device="cpu"))
        assert summary.rows == len(test) and summary.renamed == {"label": "input_label"}
        results[suffix] = {"csv": pd.read_csv, "jsonl": lambda p: pd.read_json(p, lines=True),
                           "parquet": pd.read_parquet}[suffix](tmp_path / f"o.{suffix}")
    assert results["csv"]["label"].tolist() == results["jsonl"]["label"].tolist() == \
        results["parquet"]["label"].tolist()
    assert list(results["parquet"]["top_labels"][0]) == json.loads(
        results["csv"]["top_labels"][0])
    for _, row in results["parquet"].iterrows():
        assert row["confidence"] == row["top_probs"][0] >= row["top_probs"][1]
    accuracy = (results["csv"]["label"] == test["label"]).mean()
    print(f"test-split accuracy {accuracy:.3f}")
    assert accuracy > 1 / 6 + 0.1          # six classes: a prototype head starts informed


def test_a_tiny_student_round_trips_through_the_folder_for_both_heads(tmp_path):
    model, tokenizer = tiny_student()
    texts = ["goal match team", "a much longer text about pizza bread cheese soup " * 6]
    for cosine in (False, True):
        student = StudentModel(model.encoder, 3, cosine=cosine).eval()
        torch.nn.init.normal_(student.head.weight)
        folder = save_model_dir(student, tokenizer, ["x", "y", "z"], tmp_path / f"m{cosine}",
                                max_tokens=12)
        enc = tokenizer(texts, truncation=True, max_length=12, padding=True,
                        return_tensors="pt")
        with torch.no_grad():
            want = torch.softmax(student(enc["input_ids"], enc["attention_mask"])[0], -1)
        got = Predictor.from_dir(folder, device="cpu").probabilities(texts)
        assert np.allclose(got, want.numpy(), atol=1e-6)
        # Untruncated input is cut inside the model the same way (a bare pipeline).
        loaded, _ = load_model_dir(folder, device="cpu")
        full = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            assert torch.allclose(torch.softmax(loaded(**full).logits, -1), want, atol=1e-6)


def test_a_student_saved_in_the_old_layout_still_predicts(tmp_path):
    model, tokenizer = tiny_student()
    old = tmp_path / "old"
    model.encoder.save_pretrained(old)
    tokenizer.save_pretrained(old)
    torch.save(model.head.state_dict(), old / "head.pt")
    (old / "labels.json").write_text(json.dumps({"labels": ["x", "y", "z"], "max_length": 16,
                                                 "head": {"cosine": False, "scale": 20.0}}))
    want = to_transformers(model.eval(), ["x", "y", "z"], max_tokens=16)
    enc = tokenizer(["pizza and soup"], return_tensors="pt")
    with torch.no_grad():
        expected = torch.softmax(want(**enc).logits, -1).numpy()
    got = Predictor.from_dir(old, device="cpu")
    assert got.labels == ["x", "y", "z"]
    assert np.allclose(got.probabilities(["pizza and soup"]), expected, atol=1e-6)
