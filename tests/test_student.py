"""The student trainer: a tiny real BERT for the loop's behaviour, then MiniLM for one real
epoch on 200 TREC texts."""
import numpy as np
import pytest
import torch

from candist_core.distill import distill_project, training_data
from candist_core.encoder import default_model_path
from candist_core.importing import ImportOptions, import_csv
from candist_core.metrics import project_metrics
from candist_core.records import StudentError
from candist_core.student import (Distiller, StudentConfig, StudentModel, TrainingData,
                                  choose_max_length, class_prototypes, mask_tokens,
                                  resolve_head)

LABELS = ["sports", "food", "music"]
WORDS = {"sports": "goal match team score", "food": "pizza bread cheese soup",
         "music": "guitar song piano drum"}


def tiny_student(num_labels=3):
    from transformers import AutoTokenizer, BertConfig, BertModel
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    return StudentModel(BertModel(config), num_labels), tokenizer


def toy_data(n_per_class=40, *, noisy_sets=True):
    texts, cand, gold = [], [], []
    for c, label in enumerate(LABELS):
        for i in range(n_per_class):
            words = WORDS[label].split()
            texts.append(f"{words[i % 4]} {words[(i + 1) % 4]} and {words[(i + 2) % 4]}")
            row = [False] * 3
            row[c] = True
            if noisy_sets and i % 2:
                row[(c + 1) % 3] = True
            cand.append(row)
            gold.append(c)
    n = len(texts)
    return TrainingData(list(range(n)), texts, LABELS, torch.tensor(cand),
                        torch.full((n,), -1), torch.tensor(gold))


FAST = dict(epochs=3, batch_size=8, lr=3e-3, holdout=0.2, warmup_epochs=1, min_warmup_steps=10,
            device="cpu")


def fit(config, data, **kw):
    model, tokenizer = tiny_student()
    return Distiller(config, model=model, tokenizer=tokenizer, **kw).fit(data)


def test_candist_learns_a_separable_toy_task_from_ambiguous_sets():
    data = toy_data()
    result = fit(StudentConfig(method="candist", **FAST), data)
    accuracy = (result.probs.argmax(1) == data.gold.numpy()).mean()
    assert accuracy > 0.9
    assert result.probs.shape == (120, 3)
    np.testing.assert_allclose(result.probs.sum(1), 1, atol=1e-5)


def test_every_epoch_reports_the_refinery_sets_and_selection():
    epochs = []
    result = fit(StudentConfig(method="candist", **FAST), toy_data(), on_epoch=epochs.append)
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[0]["d_out"] == epochs[0]["d_sl"] == 0       # warm-up epoch
    assert epochs[1]["d_sl"] > 0
    assert all(e["validation"] == "candidates" for e in epochs)
    assert result.best_epoch == max(range(3), key=lambda i: epochs[i]["selection_score"]) + 1
    assert set(result.flags) == {"out_of_candidate", "high_confidence", "small_loss"}


def test_training_is_reproducible_on_cpu():
    a = fit(StudentConfig(method="candist", **FAST), toy_data())
    b = fit(StudentConfig(method="candist", **FAST), toy_data())
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)


def test_human_labels_select_the_model_and_are_trained_as_fixed_targets():
    data = toy_data()
    data.human[:30:1] = data.gold[:30]
    data.human[0] = 2  # a human disagreeing with every candidate of row 0
    epochs = []
    fit(StudentConfig(method="candist", min_human_validation=10, **FAST), data,
        on_epoch=epochs.append)
    assert all(e["validation"] == "human" and e["human_accuracy"] is not None for e in epochs)


def test_cancel_stops_training_and_keeps_the_best_weights():
    import threading
    cancel = threading.Event()
    steps = []

    def on_step(done, total):
        steps.append(done)
        if done == 2:
            cancel.set()

    result = fit(StudentConfig(method="candist", **FAST), toy_data(), on_step=on_step,
                 cancel=cancel)
    assert result.cancelled and max(steps) == 2


def test_max_length_follows_the_token_lengths():
    assert choose_max_length([10] * 96 + [300] * 4) == 16
    assert choose_max_length([50] * 100) == 56
    assert choose_max_length([400] * 100) == 128


def test_token_masking_never_touches_special_tokens_or_padding():
    ids = torch.tensor([[101, 5, 6, 7, 102, 0]])
    attention = torch.tensor([[1, 1, 1, 1, 1, 0]])
    special = torch.isin(ids, torch.tensor([0, 101, 102]))
    out = mask_tokens(ids, attention, mask_id=103, special=special, p=1.0,
                      generator=torch.Generator().manual_seed(0))
    assert out.tolist() == [[101, 103, 103, 103, 102, 0]]


def test_bad_settings_are_refused():
    with pytest.raises(StudentError, match="Unknown method 'x'"):
        StudentConfig(method="x")
    with pytest.raises(StudentError, match="--max-length must be between 8 and 512"):
        StudentConfig(max_length=4)


@pytest.fixture
def trec200(store, trec_project, trec_dir, tmp_path):
    import pandas as pd
    frame = pd.read_csv(trec_dir / "train.csv").sample(n=200, random_state=0)
    frame.to_csv(tmp_path / "slice.csv", index=False)
    import_csv(store, trec_project.id, tmp_path / "slice.csv",
               options=ImportOptions(gold_col="label"))
    return trec_project


def test_distilling_without_annotations_says_what_to_do(store, trec200):
    with pytest.raises(StudentError, match="run 'annotate' first"):
        training_data(store, trec200.id, method="candist")


def test_one_real_epoch_on_200_trec_texts_writes_predictions_and_a_checkpoint(store, trec200):
    from candist_core.encoder import shared_encoder
    from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
    annotate_project(store, trec200.id, OfflineTeacher(shared_encoder()), TeacherConfig())
    samples = store.samples(trec200.id)
    store.record_decision(trec200.id, samples[0].id, action="label", label="Human")
    epochs = []
    run_id = distill_project(store, trec200.id, StudentConfig(epochs=1), on_epoch=epochs.append)
    run = store.student_run(run_id)
    assert run["status"] == "done" and run["best_epoch"] == 1
    assert len(run["epochs"]) == 1 == len(epochs)
    assert (store.path.parent / "models" / "trec" / f"run-{run_id}" / "head.pt").is_file()
    predictions = store.predictions(run_id)
    assert len(predictions) == 200
    assert all(0 < p["confidence"] <= 1 for p in predictions)
    metrics = project_metrics(store, trec200.id)["student"]
    assert metrics["epochs_run"] == 1 and metrics["best_epoch"] == 1
    assert metrics["accuracy"] is not None and metrics["human_accuracy"] is not None


def test_the_optional_cosine_head_starts_at_the_label_embeddings():
    model, tokenizer = tiny_student()
    cosine = StudentModel(model.encoder, 3, cosine=True)
    labels = torch.randn(3, 32)
    cosine.start_head_at(labels)
    torch.testing.assert_close(cosine.head.weight.norm(dim=1), torch.ones(3))
    pooled = labels[1:2] * 5
    cosine.eval()
    assert cosine.classify(pooled).argmax().item() == 1
    data = toy_data()
    data.label_texts = [f"{l}: {WORDS[l]}" for l in LABELS]
    result = Distiller(StudentConfig(method="candist", head_init="labels", **FAST), model=cosine,
                       tokenizer=tokenizer).fit(data)
    assert result.probs.shape == (120, 3)


def test_class_prototypes_are_set_weighted_means_of_unit_embeddings():
    pooled = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]])  # last row: no set
    unit = pooled / pooled.norm(dim=1, keepdim=True)
    expected = torch.stack([(unit[0] + 0.5 * unit[1]) / 1.5, unit[1]])
    torch.testing.assert_close(class_prototypes(pooled, targets), expected)


def test_a_prototype_head_starts_as_a_nearest_centroid_classifier():
    model, tokenizer = tiny_student()
    cosine = StudentModel(model.encoder, 3, cosine=True)
    data = toy_data(noisy_sets=False)
    distiller = Distiller(StudentConfig(method="candist", head_init="prototypes", epochs=1,
                                        holdout=0.0), model=cosine, tokenizer=tokenizer)
    ids, max_length = distiller._tokenize(data.texts, None)
    rows = list(range(len(data.texts)))
    distiller.start_head(cosine, "prototypes", data, ids, max_length, rows,
                         torch.zeros(len(rows), 3))
    pooled = distiller.embed_rows(cosine, ids, rows)
    expected = class_prototypes(pooled, data.cand.float())
    torch.testing.assert_close(cosine.head.weight, expected / expected.norm(dim=1,
                                                                             keepdim=True))


@pytest.mark.parametrize("head, start_from_head, informed", [
    ("prototypes", True, True), ("prototypes", False, False), ("random", True, False),
    ("labels", True, False)])   # toy data has no label texts: the head was never started
def test_first_targets_come_from_an_informed_head_else_uniform_over_the_set(
        head, start_from_head, informed):
    model, tokenizer = tiny_student()
    cosine = StudentModel(model.encoder, 3, cosine=head != "random")
    data = toy_data()
    distiller = Distiller(StudentConfig(method="candist", head_init=head, epochs=1,
                                        start_from_head=start_from_head),
                          model=cosine, tokenizer=tokenizer)
    ids, max_length = distiller._tokenize(data.texts, None)
    rows = list(range(len(data.texts)))
    probs = distiller.start_head(cosine, head, data, ids, max_length, rows,
                                 torch.zeros(len(rows), 3))
    uniform = data.cand.float() / data.cand.float().sum(1, keepdim=True)
    if informed:
        torch.testing.assert_close(probs, distiller.predict(cosine, ids, rows))
        assert not torch.allclose(probs, uniform)
    else:
        torch.testing.assert_close(probs, uniform)


@pytest.mark.parametrize("head_init, samples, classes, expected", [
    ("auto", 1500, 77, "prototypes"),   # ~20 a class: too few to learn a random head
    ("auto", 1500, 6, "random"),        # 250 a class
    ("random", 100, 77, "random"),      # an explicit choice is kept
    ("labels", 5000, 2, "labels"),
])
def test_the_head_start_depends_on_samples_per_class(head_init, samples, classes, expected):
    assert resolve_head(StudentConfig(head_init=head_init), samples, classes) == expected
