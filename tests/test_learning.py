"""The learning loop: head updates from human decisions, out-of-sample probabilities and
cleanlab's label-issue signal, the ``distill --update`` and ``queue`` commands."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from candist_core.distill import checkpoint_dir, distill_project, update_student
from candist_core.predicting import Predictor
from candist_core.importing import ImportOptions, import_csv
from candist_core.learning import (Head, UpdateConfig, calibrate, label_quality,
                                   out_of_sample_probs, temperature_fitting,
                                   temperature_matching, update_head)
from candist_core.student_state import save_state
from candist_core.records import StudentError
from candist_core.review import SIGNALS, rank_ambiguous, shuffle_keys
from candist_core.schema import load_schema
from candist_core.store import Store
from candist_core.student import StudentConfig
from candist_core.student_state import load_embeddings, load_head, state_path
from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
from candist_core.encoder import shared_encoder
from tests.conftest import ROOT, dataset


def clusters(n_per: int = 40, classes: int = 3, dim: int = 16, seed: int = 0):
    """Well-separated Gaussian clusters: embeddings and their true class."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 4
    y = torch.arange(classes).repeat_interleave(n_per)
    x = centres[y] + torch.randn(len(y), dim, generator=g)
    return x, y


# ------------------------------------------------------------------ pure pieces
def test_a_head_update_learns_a_class_the_teacher_always_confuses_from_a_few_human_labels():
    x, y = clusters()
    c = 3
    cand = F.one_hot(y, c).bool()
    cand[y == 2] = F.one_hot(torch.tensor(1), c).bool()    # the teacher says 1 for class 2
    # The student learned the teacher's view: its head sits at the teacher's prototypes.
    unit = F.normalize(x, dim=-1)
    protos = torch.stack([unit[cand[:, k]].mean(0) if cand[:, k].any()
                          else torch.zeros(x.shape[1]) for k in range(c)])
    head = Head(F.normalize(protos, dim=-1).numpy(), np.zeros(c, np.float32), cosine=True)
    fixed = torch.zeros(len(y), dtype=torch.bool)
    fixed[torch.nonzero(y == 2).squeeze(1)[:8]] = True     # 8 of the 40 reviewed
    fixed_targets = F.one_hot(y, c).float()
    before, _ = update_head(head, x, cand, torch.zeros_like(fixed), fixed_targets,
                            UpdateConfig())
    after, losses = update_head(head, x, cand, fixed, fixed_targets, UpdateConfig())
    unreviewed = (y == 2) & ~fixed
    assert (before.probs(x).argmax(1)[unreviewed] == 2).float().mean() < 0.1
    assert (after.probs(x).argmax(1)[unreviewed] == 2).float().mean() > 0.8
    assert (after.probs(x).argmax(1)[y != 2] == y[y != 2]).all()
    assert len(losses) == UpdateConfig().rounds * UpdateConfig().steps


def test_temperature_scaling_recovers_how_much_a_model_overstates_its_confidence():
    g = torch.Generator().manual_seed(1)
    honest = torch.randn(4000, 5, generator=g) * 2
    labels = torch.multinomial(F.softmax(honest, 1), 1, generator=g).squeeze(1)
    assert temperature_fitting(honest * 3, labels) == pytest.approx(3, rel=0.1)
    t = temperature_matching(honest * 3, 0.6)
    assert float(F.softmax(honest * 3 / t, 1).max(1).values.mean()) == pytest.approx(0.6,
                                                                                    abs=0.01)


def confused_teacher():
    """Clusters whose class 2 the teacher always calls 1, and a head at its prototypes."""
    x, y = clusters()
    c = 3
    cand = F.one_hot(y, c).bool()
    cand[y == 2] = F.one_hot(torch.tensor(1), c).bool()
    unit = F.normalize(x, dim=-1)
    protos = torch.stack([unit[cand[:, k]].mean(0) if cand[:, k].any()
                          else torch.zeros(x.shape[1]) for k in range(c)])
    head = Head(F.normalize(protos, dim=-1).numpy(), np.zeros(c, np.float32), cosine=True,
                scale=2.0)
    return x, y, cand, head


def test_an_update_claims_no_more_confidence_than_the_full_student_without_human_evidence(
        tmp_path):
    x, y, cand, full = confused_teacher()
    none = torch.zeros(len(y), dtype=torch.bool)
    targets = F.one_hot(y, 3).float()
    raw, _ = update_head(full, x, cand, none, targets, UpdateConfig())
    # Self-training rounds make the head surer of the teacher's view, not more right.
    assert raw.probs(x).max(1).values.mean() > full.probs(x).max(1).values.mean() + 0.1
    head, how = calibrate(raw, full, full, x, cand, none, targets, UpdateConfig())
    assert how.fitted is None and how.temperature == how.matching > 1
    assert float(head.probs(x).max(1).values.mean()) == pytest.approx(
        float(full.probs(x).max(1).values.mean()), abs=0.01)
    assert torch.equal(head.probs(x).argmax(1), raw.probs(x).argmax(1))   # labels unchanged
    # The temperature travels with the head, and folds into a plain linear layer.
    save_state(tmp_path / "run.state", head=head, labels=["a", "b", "c"])
    loaded, _ = load_head(tmp_path / "run.state")
    assert loaded.temperature == pytest.approx(how.temperature, rel=1e-3)
    assert torch.allclose(loaded.folded().probs(x), head.probs(x), atol=1e-5)


def test_human_labels_left_out_of_their_own_update_calibrate_it_when_there_are_enough():
    x, y, cand, full = confused_teacher()
    targets = F.one_hot(y, 3).float()
    fixed = torch.zeros(len(y), dtype=torch.bool)
    fixed[torch.arange(0, len(y), 4)] = True                     # 30 of 120, every class
    raw, _ = update_head(full, x, cand, fixed, targets, UpdateConfig())
    head, how = calibrate(raw, full, full, x, cand, fixed, targets, UpdateConfig())
    assert how.humans == 30 and how.fitted is not None
    assert how.temperature == how.fitted
    few = fixed & (torch.arange(len(y)) < 40)
    _, how = calibrate(raw, full, full, x, cand, few, targets, UpdateConfig())
    assert how.humans == 10 and how.fitted is None               # under 20: matching only


def test_out_of_sample_probabilities_never_depend_on_the_row_s_own_target():
    x, y = clusters()
    targets = F.one_hot(y, 3).float()
    flipped = targets.clone()
    flipped[5] = F.one_hot(torch.tensor(2), 3).float()        # row 5's label changed
    a = out_of_sample_probs(x, targets, folds=5, seed=1)
    b = out_of_sample_probs(x, flipped, folds=5, seed=1)
    assert np.allclose(a[5], b[5], atol=1e-6)
    assert not np.allclose(a, b, atol=1e-6)                  # others' heads did see it
    assert (a.argmax(1) == y.numpy()).mean() > 0.95


def test_cleanlab_scores_a_wrong_teacher_label_lowest():
    x, y = clusters()
    labels = y.numpy().copy()
    wrong = [3, 50, 90]
    labels[wrong] = (labels[wrong] + 1) % 3
    oos = out_of_sample_probs(x, F.one_hot(torch.from_numpy(labels), 3).float(), seed=0)
    scores = label_quality(labels, oos)
    assert set(np.argsort(scores)[:3]) == set(wrong)
    assert np.isnan(label_quality(np.array([-1, 0]), oos[:2])[0])


def test_the_label_issue_order_serves_the_lowest_label_quality_first_and_random_is_stable():
    signals = {"sample_id": np.array([10, 11, 12, 13]),
               "candidates": [["a"], ["a", "b"], ["b"], []],
               "teacher_label": ["a", "a", "b", None], "student_label": ["a"] * 4,
               "teacher_confidence": np.ones(4), "student_confidence": np.ones(4),
               "entropy": np.zeros(4), "out_of_candidate": np.zeros(4, bool),
               "decided": np.array([False, False, True, False]),
               "label_issue": np.array([0.4, 0.1, 0.0, np.nan])}
    assert rank_ambiguous(signals, signal="label_issue").tolist() == [1, 0]  # 12 decided
    first = rank_ambiguous(signals, signal="random").tolist()
    assert sorted(first) == [0, 1] and rank_ambiguous(signals, signal="random").tolist() == first
    # A text keeps its place in the shuffle when others are imported.
    keys = shuffle_keys(np.arange(100))
    assert np.array_equal(shuffle_keys(np.arange(200))[:100], keys)
    assert {"label_issue", "random"} <= set(SIGNALS)


# ------------------------------------------------------------- a real project
@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """A 240-text TREC project, offline CA_all, one 1-epoch student (the real encoder)."""
    trec = dataset("trec")
    tmp = tmp_path_factory.mktemp("loop")
    frame = pd.read_csv(trec / "train.csv", dtype=str, keep_default_na=False).head(240)
    frame.loc[0, "text"] = "=HYPERLINK(\"http://x\") what is this ?"
    frame.to_csv(tmp / "t.csv", index=False)
    db = tmp / "loop.db"
    with Store(db) as store:
        project = store.create_project("loop", load_schema(trec / "labels.json"))
        import_csv(store, project.id, tmp / "t.csv", options=ImportOptions(gold_col="label"))
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                         TeacherConfig(strategy="ca_all"))
        run = distill_project(store, project.id, StudentConfig(epochs=1, extra_epochs=0))
    return db, project.id, run


def copy_of(db: Path, folder: Path) -> Path:
    """The fixture's database and its models folder copied into ``folder`` (each test
    changes its own copy)."""
    copy = folder / "copy.db"
    shutil.copyfile(db, copy)
    shutil.copytree(db.parent / "models", folder / "models")
    return copy


@pytest.mark.slow
def test_a_full_distillation_leaves_embeddings_head_and_label_issue_scores(distilled):
    db, pid, run = distilled
    with Store(db) as store:
        state = state_path(checkpoint_dir(store, "loop", run))
        ids, emb = load_embeddings(state)
        head, labels = load_head(state)
        assert ids.tolist() == [s.id for s in store.samples(pid)] and emb.shape == (240, 384)
        assert labels == store.label_schema(pid).names
        stored = np.stack([p.probs for p in store.predictions(run)])
        assert np.allclose(head.probs(torch.from_numpy(emb)).numpy(), stored, atol=2e-3)
        issue = store.review_signals(pid)["label_issue"]
        assert np.isfinite(issue).all() and ((issue >= 0) & (issue <= 1)).all()


@pytest.mark.slow
def test_an_update_learns_every_human_decision_in_a_new_run_and_keeps_the_old_one(
        distilled, tmp_path):
    db, pid, run = distilled
    copy = copy_of(db, tmp_path)
    with Store(copy) as store:
        before = {p.sample_id: p.label for p in store.predictions(run)}
        samples = store.samples(pid)
        wrong = [s for s in samples if before[s.id] != s.gold][:15]
        for s in wrong:
            store.record_decision(pid, s.id, action="label", label=s.gold, who="t")
        new = update_student(store, pid)
        updated = store.student_run(new)
        assert store.latest_student_run(pid).id == new
        assert updated.config["update_of"] == run and updated.config["human_labels"] == 15
        after = {p.sample_id: p.label for p in store.predictions(new)}
        assert all(after[s.id] == s.gold for s in wrong)
        assert {p.sample_id: p.label for p in store.predictions(run)} == before
        assert not (state_path(checkpoint_dir(store, "loop", new)) / "embeddings.npy").exists()
        # The update is a model folder of its own: the full run's encoder with the new
        # head, labelling new texts as the update's predictions label the pool.
        assert Path(updated.checkpoint).is_dir() and Path(updated.checkpoint) != Path(
            store.student_run(run).checkpoint)
        predictor = Predictor.from_dir(updated.checkpoint)
        probs = predictor.probabilities([s.text for s in wrong])
        labels = store.label_schema(pid).names
        assert [labels[i] for i in probs.argmax(1)] == [s.gold for s in wrong]
        # ... with the same (calibrated) confidence the app shows for them.
        shown = {p.sample_id: p.probs for p in store.predictions(new)}
        assert np.allclose(probs, np.stack([shown[s.id] for s in wrong]), atol=5e-3)
        assert store.student_run(new).epochs[0]["calibration"]["temperature"] > 0
        assert "15 human labels" in (Path(updated.checkpoint) / "README.md").read_text()
        # A second update starts from the first one's head, over the full run's embeddings;
        # only the newest update keeps a folder (each is a full copy), the full run keeps its.
        again = store.student_run(update_student(store, pid))
        assert again.config["update_of"] == new and again.config["embeddings_run"] == run
        assert Path(again.checkpoint).is_dir() and not Path(updated.checkpoint).exists()
        assert store.student_run(new).checkpoint is None
        assert Path(store.student_run(run).checkpoint).is_dir()


@pytest.mark.slow
def test_an_update_first_reteaches_the_offline_teacher_with_the_human_labels(distilled,
                                                                            tmp_path):
    db, pid, run = distilled
    copy = copy_of(db, tmp_path)
    with Store(copy) as store:
        first = store.latest_teacher_run(pid)
        before = [(r.sample_id, r.candidates) for r in store.annotations(first.id)]
        for s in store.samples(pid)[:30]:
            store.record_decision(pid, s.id, action="label", label=s.gold, who="t")
        updated = store.student_run(update_student(store, pid, teach=True))
        taught = store.latest_teacher_run(pid)
        assert taught.id != first.id and taught.params["human_taught"] is True
        assert taught.params["human_labels"] == 30 and taught.status == "done"
        assert updated.teacher_run_id == taught.id
        assert updated.config["taught_teacher"]["teacher_run"] == taught.id
        assert [(r.sample_id, r.candidates) for r in store.annotations(first.id)] == before
        # The project setting off: the update keeps the current candidate sets.
        store.set_teach_on_update(pid, False)
        assert store.teach_on_update(pid) is False
        s = store.samples(pid)[40]
        store.record_decision(pid, s.id, action="label", label=s.gold, who="t")
        plain = store.student_run(update_student(store, pid,
                                                 teach=store.teach_on_update(pid)))
        assert plain.teacher_run_id == taught.id and "taught_teacher" not in plain.config
        with pytest.raises(ValueError, match="true or false"):
            store.set_teach_on_update(pid, "yes")
        # The next taught update supersedes what the earlier updates left: their
        # predictions and the taught run nothing uses any more go; the full run's
        # predictions, its teacher run and every run row stay.
        s = store.samples(pid)[41]
        store.record_decision(pid, s.id, action="label", label=s.gold, who="t")
        newest = store.student_run(update_student(store, pid, teach=True))
        assert newest.teacher_run_id not in (first.id, taught.id)
        assert [r.id for r in store.teacher_runs(pid)] == [newest.teacher_run_id, first.id]
        assert store.predictions(updated.id) == [] and store.predictions(plain.id) == []
        assert len(store.predictions(run)) == len(store.predictions(newest.id)) == 240
        assert {r.id for r in store.student_runs(pid)} == {run, updated.id, plain.id,
                                                           newest.id}


@pytest.mark.slow
def test_an_update_refuses_clearly_without_a_student_or_with_texts_it_never_embedded(
        distilled, tmp_path, trec_dir):
    with Store(tmp_path / "empty.db") as store:
        project = store.create_project("none", load_schema(trec_dir / "labels.json"))
        with pytest.raises(StudentError, match="full distillation first"):
            update_student(store, project.id)
    db, pid, _ = distilled
    more = copy_of(db, tmp_path)
    extra = tmp_path / "extra.csv"
    pd.DataFrame({"text": ["a brand new question ?"]}).to_csv(extra, index=False)
    with Store(more) as store:
        import_csv(store, pid, extra)
        with pytest.raises(StudentError, match="1 texts were imported after"):
            update_student(store, pid)


@pytest.mark.slow
def test_distill_update_on_the_command_line_reports_the_run_and_its_model_folder(
        distilled, tmp_path):
    db, pid, run = distilled
    copy = copy_of(db, tmp_path)
    with Store(copy) as store:
        s = store.samples(pid)[3]
        store.record_decision(pid, s.id, action="label", label=s.gold, who="t")
    report = json.loads(update_on_the_command_line(copy, "--json"))
    assert report["update_of"] == run and report["human_labels"] == 1
    assert Path(report["model_dir"]).is_dir() and report["accuracy"] is not None
    with Store(copy) as store:
        assert store.latest_student_run(pid).config["trigger"] == "cli"
        # The project's default: the offline teacher was re-taught first.
        assert report["taught_teacher_run"] == store.latest_teacher_run(pid).id
        s = store.samples(pid)[4]
        store.record_decision(pid, s.id, action="label", label=s.gold, who="t")
    said = update_on_the_command_line(copy, "--no-teach")
    assert "with 2 human labels" in said and "re-taught" not in said


def update_on_the_command_line(db: Path, *flags: str) -> str:
    """``distill --update`` on the fixture's project in a real process; its stdout."""
    out = subprocess.run([sys.executable, "-m", "candist_core", "distill", "--db", str(db),
                          "--project", "loop", "--update", *flags],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
def test_queue_writes_the_next_texts_in_review_order_safe_for_a_spreadsheet(distilled):
    db, pid, _ = distilled
    for signal in ("set_size", "label_issue", "random"):
        out = subprocess.run([sys.executable, "-m", "candist_core", "queue", "--db", str(db),
                              "--project", "loop", "--n", "7", "--signal", signal],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert out.returncode == 0, out.stderr
        rows = list(csv.DictReader(io.StringIO(out.stdout)))
        with Store(db) as store:
            signals = store.review_signals(pid)
            want = [int(signals["sample_id"][i])
                    for i in rank_ambiguous(signals, signal=signal)[:7]]
            ext = {s.id: s.ext_id for s in store.samples(pid, ids=want)}
        assert [r["id"] for r in rows] == [ext[i] for i in want]
        assert all(isinstance(json.loads(r["candidates"]), list) for r in rows)
    every = subprocess.run([sys.executable, "-m", "candist_core", "queue", "--db", str(db),
                            "--project", "loop", "--n", "1000", "--signal", "random"],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
    texts = [r["text"] for r in csv.DictReader(io.StringIO(every.stdout))]
    assert len(texts) == 240 and "'=HYPERLINK(\"http://x\") what is this ?" in texts
    bad = subprocess.run([sys.executable, "-m", "candist_core", "queue", "--db", str(db),
                          "--project", "loop", "--n", "0"], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and "--n must be at least 1" in bad.stderr


def test_on_a_large_project_the_fold_updates_learn_from_a_sample_of_the_teacher_rows():
    x, y, cand, full = confused_teacher()
    targets = F.one_hot(y, 3).float()
    fixed = torch.zeros(len(y), dtype=torch.bool)
    fixed[torch.arange(0, len(y), 4)] = True
    raw, _ = update_head(full, x, cand, fixed, targets, UpdateConfig())
    _, whole = calibrate(raw, full, full, x, cand, fixed, targets, UpdateConfig())
    _, sampled = calibrate(raw, full, full, x, cand, fixed, targets, UpdateConfig(),
                           fold_rows=60)
    assert sampled.fitted is not None
    assert sampled.fitted == pytest.approx(whole.fitted, rel=0.2)   # the same scale
