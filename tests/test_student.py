"""The student trainer: a tiny real BERT for the loop's behaviour, then MiniLM for one real
epoch on 200 TREC texts."""
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from candist_core import charts
from candist_core.distill import distill_project, training_data
from candist_core.encoder import default_model_path
from candist_core.importing import ImportOptions, import_csv
from candist_core.metrics import project_metrics
from candist_core.records import StudentError
from candist_core.refinery import Components, Partition
from candist_core.student import (EXTRA_EPOCHS, HEAD_INITS, Distiller, Schedule, StudentConfig,
                                  StudentModel, TrainingData, batch_targets, choose_max_length,
                                  class_prototypes, consistency_losses, goes_on, lr_factor,
                                  mask_tokens, masked_view, mixup_loss, resolve_head, set_purity,
                                  split_rows)

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


FAST = dict(epochs=3, extra_epochs=0, batch_size=8, lr=3e-3, holdout=0.2, warmup_epochs=1,
            min_warmup_steps=10, device="cpu")


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
    with pytest.raises(StudentError, match="Unknown head start 'x': use auto, random, "
                                           "prototypes."):
        StudentConfig(head_init="x")
    assert StudentConfig(head_init="labels").head_init == "labels"   # old scripts still run


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
    run_id = distill_project(store, trec200.id, StudentConfig(epochs=1, extra_epochs=0),
                             on_epoch=epochs.append)
    run = store.student_run(run_id)
    assert run.status == "done" and run.best_epoch == 1
    assert len(run.epochs) == 1 == len(epochs)
    steps = run.epochs[0]["step_losses"]           # the Distill page's per-step loss curve
    assert len(steps) >= 5 and run.epochs[0]["loss"] == pytest.approx(np.mean(steps), abs=1e-3)
    figure = charts.loss_figure(run.epochs, run.best_epoch)
    assert len(next(t for t in figure.data if t.name == "each step").x) == len(steps)
    assert (store.path.parent / "models" / "trec" / f"run-{run_id}" / "model.safetensors").is_file()
    predictions = store.predictions(run_id)
    assert len(predictions) == 200
    assert all(0 < p.confidence <= 1 for p in predictions)
    metrics = project_metrics(store, trec200.id)["student"]
    assert metrics["epochs_run"] == 1 and metrics["best_epoch"] == 1
    assert metrics["accuracy"] is not None and metrics["human_accuracy"] is not None
    # A label made after the run started is one it never trained on, and is counted apart.
    store.record_decision(trec200.id, samples[1].id, action="label", label="Location")
    metrics = project_metrics(store, trec200.id)["student"]
    assert (metrics["human_labels"], metrics["human_labels_trained"]) == (2, 1)
    said = next(p.label for p in predictions if p.sample_id == samples[1].id)
    assert metrics["human_accuracy_since"] == float(said == "Location")


def test_a_cosine_head_started_at_directions_scores_a_text_by_its_cosine_to_each():
    model, _ = tiny_student()
    cosine = StudentModel(model.encoder, 3, cosine=True, scale=20.0).eval()
    directions = torch.randn(3, 32, generator=torch.Generator().manual_seed(1)) * 7
    cosine.start_head_at(directions)
    texts = torch.randn(50, 32, generator=torch.Generator().manual_seed(2)) * 3
    expected = 20.0 * F.normalize(texts, dim=-1) @ F.normalize(directions, dim=-1).T
    logits = cosine.classify(texts)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    assert torch.equal(logits.argmax(1), expected.argmax(1))
    # a text lying along direction c, at any length, is scored highest for c (cosine 1)
    for c in range(3):
        along = cosine.classify(directions[c:c + 1] * (c + 0.5))
        assert along.argmax().item() == c
        assert along[0, c].item() == pytest.approx(20.0, abs=1e-5)


def test_the_legacy_labels_head_still_trains_for_old_scripts():
    model, tokenizer = tiny_student()
    cosine = StudentModel(model.encoder, 3, cosine=True)
    data = toy_data()
    data.label_texts = [f"{l}: {WORDS[l]}" for l in LABELS]
    epochs = []
    result = Distiller(StudentConfig(method="candist", head_init="labels", **FAST), model=cosine,
                       tokenizer=tokenizer, on_epoch=epochs.append).fit(data)
    assert result.probs.shape == (120, 3) and epochs[0]["head"] == "labels"
    assert "labels" not in HEAD_INITS


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
    ids, max_length = distiller.tokenize(data.texts)
    rows = list(range(len(data.texts)))
    distiller.start_head(data, head="prototypes", ids=ids, max_length=max_length,
                         train_rows=rows, fixed_targets=torch.zeros(len(rows), 3))
    pooled = distiller.embed_rows(ids, rows)
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
    ids, max_length = distiller.tokenize(data.texts)
    rows = list(range(len(data.texts)))
    probs = distiller.start_head(data, head=head, ids=ids, max_length=max_length,
                                 train_rows=rows, fixed_targets=torch.zeros(len(rows), 3))
    uniform = data.cand.float() / data.cand.float().sum(1, keepdim=True)
    if informed:
        torch.testing.assert_close(probs, distiller.predict(ids, rows))
        assert not torch.allclose(probs, uniform)
    else:
        torch.testing.assert_close(probs, uniform)


@pytest.mark.parametrize("head_init, method, samples, classes, purity, expected", [
    ("auto", "candist", 1500, 77, 0.0, "prototypes"),  # ~20 a class: too few for a random head
    ("auto", "sa", 1500, 77, 0.0, "prototypes"),
    ("auto", "candist", 1500, 6, 0.46, "random"),      # 250 a class, TREC's blurred sets
    ("auto", "candist", 800, 5, 0.76, "prototypes"),   # Medical Abstracts' small sets
    ("auto", "uniform", 800, 5, 0.5, "prototypes"),    # the threshold itself
    ("auto", "sa", 800, 5, 1.0, "random"),             # sa keeps the data rule
    ("random", "candist", 100, 77, 1.0, "random"),     # an explicit choice is kept
    ("labels", "candist", 5000, 2, 0.0, "labels"),
])
def test_the_head_start_depends_on_samples_per_class_and_the_sets_purity(
        head_init, method, samples, classes, purity, expected):
    config = StudentConfig(head_init=head_init, method=method)
    assert resolve_head(config, samples, classes, purity=purity) == expected


def test_set_purity_is_the_share_of_a_prototype_from_its_own_class_above_chance():
    none = torch.zeros(4, dtype=torch.bool)
    singles = torch.eye(4, dtype=torch.bool)
    assert set_purity(singles, none) == pytest.approx(1.0)
    assert set_purity(torch.ones(4, 4, dtype=torch.bool), none) == pytest.approx(0.0)
    # sets of 1 and 2 of 4 labels: mean 1/|s| = 0.75, chance 0.25 -> (0.75 - 0.25) / 0.75
    pairs = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    assert set_purity(pairs, torch.zeros(2, dtype=torch.bool)) == pytest.approx(2 / 3)
    # a human label is a set of one, whatever the teacher's set
    assert set_purity(pairs, torch.tensor([False, True])) == pytest.approx(1.0)


def test_the_lr_schedule_is_hf_linear_warmup_one_step_ahead():
    from transformers import get_linear_schedule_with_warmup
    assert [lr_factor(s, warmup=4, total=12) for s in range(13)] == [
        0.25, 0.5, 0.75, 1.0, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0.0]
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    hf = get_linear_schedule_with_warmup(optimizer, 4, 12).lr_lambdas[0]
    assert hf(0) == 0.0                                      # HF's first step learns nothing
    assert all(hf(s + 1) == lr_factor(s, warmup=4, total=12) for s in range(4))
    assert all(hf(s) == lr_factor(s, warmup=4, total=12) for s in range(4, 13))


def test_an_extension_restarts_at_half_the_peak_and_leaves_the_planned_steps_alone():
    schedule = Schedule(warmup=4, planned=12)
    planned = [schedule(s) for s in range(13)]
    schedule.extend(12, 6)
    assert [schedule(s) for s in range(12)] == planned[:12]   # the steps already taken
    assert [schedule(s) for s in range(12, 19)] == [0.5, 5 / 12, 4 / 12, 3 / 12, 2 / 12,
                                                   1 / 12, 0.0]


def test_a_run_whose_predictions_still_change_trains_on_and_says_so():
    epochs, steps = [], []
    config = StudentConfig(method="candist", **{**FAST, "epochs": 2, "extra_epochs": 1},
                           settled=0.0)
    result = fit(config, toy_data(), on_epoch=epochs.append, on_step=lambda d, t: steps.append(t))
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[1]["extended"] == 1 and "extended" not in epochs[0]
    per_epoch = steps[0] // 2
    assert steps[0] == 2 * per_epoch and steps[-1] == 3 * per_epoch   # the total grows
    assert 1 <= result.best_epoch <= 3
    # settled runs stop at the plan; no extra epochs, no extension
    for settled, extra in ((1.0, 1), (0.0, 0)):
        epochs.clear()
        fit(replace(config, settled=settled, extra_epochs=extra), toy_data(),
            on_epoch=epochs.append)
        assert [e["epoch"] for e in epochs] == [1, 2]
    with pytest.raises(StudentError, match="Extra epochs must be 0"):
        StudentConfig(extra_epochs=-1)


@pytest.mark.parametrize("epoch, planned, changed, best_epoch, previous_plan, more", [
    (4, 4, 0.038, 2, 0, True),      # unsettled at the end of the plan: two more
    (3, 4, 0.200, 3, 0, False),     # not the end of the plan
    (4, 4, 0.019, 4, 0, False),     # settled
    (6, 6, 0.027, 2, 4, False),     # the extension found no better epoch: enough
    (6, 6, 0.027, 5, 4, True),      # ... it did, and the labels still move: two more
    (8, 8, 0.050, 8, 6, False),     # the limit
])
def test_a_run_goes_on_while_its_labels_move_and_its_score_improves(
        epoch, planned, changed, best_epoch, previous_plan, more):
    assert goes_on(epoch, planned=planned, limit=8, changed=changed, settled=0.02,
                   best_epoch=best_epoch, previous_plan=previous_plan) is more


def test_set_based_runs_may_go_on_by_default_and_single_label_runs_do_not():
    assert StudentConfig().extra == StudentConfig(method="uniform").extra == EXTRA_EPOCHS == 4
    assert StudentConfig(method="sa").extra == 0
    assert replace(StudentConfig(), method="sa").extra == 0     # as the benchmarks build it
    assert StudentConfig(method="sa", extra_epochs=2).extra == 2


def test_a_seeded_split_validates_on_humans_when_there_are_enough_else_on_held_back_sets():
    data = toy_data()                       # 120 annotated rows, no human labels
    data.cand[:10] = False                  # 10 rows with nothing to learn from
    split = split_rows(data, seed=0, min_human_validation=20, holdout=0.1, max_holdout=500)
    assert split.validation == "candidates" and len(split.val) == 11
    assert set(split.train).isdisjoint(split.val) and len(split.train) == 99
    assert min(split.train + split.val) >= 10
    assert split == split_rows(data, seed=0, min_human_validation=20, holdout=0.1,
                               max_holdout=500)
    data.human[:40] = data.gold[:40]
    split = split_rows(data, seed=0, min_human_validation=20, holdout=0.1, max_holdout=500)
    assert split.validation == "human" and len(split.val) == 20
    assert set(split.val) <= set(range(40)) and len(split.train) == 100


def test_baseline_targets_are_uniform_over_the_set_and_human_rows_one_hot():
    cand = torch.tensor([[True, True, False], [False, False, True], [True, True, True]])
    fixed = torch.tensor([False, False, True])
    fixed_targets = torch.tensor([[0.0, 0, 0], [0, 0, 0], [0, 1, 0]])
    for method in ("sa", "uniform"):
        targets, weights = batch_targets(method, probs=torch.full((3, 3), 1 / 3), cand=cand,
                                         fixed=fixed, fixed_targets=fixed_targets, part=None,
                                         gamma=0.85, components=Components())
        torch.testing.assert_close(targets, torch.tensor([[0.5, 0.5, 0], [0, 0, 1], [0, 1, 0]]))
        assert weights.tolist() == [1, 1, 1]


def test_candist_targets_renormalise_the_epoch_prediction_and_follow_the_partition():
    probs = torch.tensor([[0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.97, 0.02, 0.01]])
    cand = torch.tensor([[True, True, False], [True, True, False], [False, True, True]])
    fixed = torch.zeros(3, dtype=torch.bool)
    args = dict(probs=probs, cand=cand, fixed=fixed, fixed_targets=torch.zeros(3, 3),
                gamma=0.85, components=Components())
    warmup, weights = batch_targets("candist", part=None, **args)   # Eq. 1 alone
    torch.testing.assert_close(warmup, torch.tensor([[0.75, 0.25, 0], [0.5, 0.5, 0],
                                                     [0, 2 / 3, 1 / 3]]))
    assert weights.tolist() == [1, 1, 1]
    # row 1 out of its set (dropped), row 2 out of its set but confident (one-hot argmax)
    part = Partition(out=torch.tensor([False, True, True]),
                     small_loss=torch.tensor([True, False, False]),
                     high_conf=torch.tensor([False, False, True]))
    targets, weights = batch_targets("candist", part=part, **args)
    sharpened = torch.tensor([0.75, 0.25]) ** (1 / 0.85)
    torch.testing.assert_close(targets[0, :2], sharpened / sharpened.sum())
    torch.testing.assert_close(targets[2], torch.tensor([1.0, 0, 0]))
    assert weights.tolist() == [1, 0, 1]


def test_mixup_of_identical_rows_is_their_own_cross_entropy_and_needs_two_rows():
    head = torch.nn.Linear(4, 3)
    pooled = torch.tensor([[1.0, 2.0, 0.0, -1.0]]).repeat(5, 1)
    targets = torch.tensor([[0.2, 0.8, 0.0]]).repeat(5, 1)
    generator = torch.Generator().manual_seed(0)
    loss = mixup_loss(head, pooled, targets, torch.ones(5), generator=generator)
    expected = -(targets[0] * F.log_softmax(head(pooled[:1]), 1)[0]).sum()
    torch.testing.assert_close(loss, expected)
    state = generator.get_state()
    assert mixup_loss(head, pooled, targets, torch.tensor([0.0, 0, 0, 1, 0]),
                      generator=generator).item() == 0.0
    assert torch.equal(generator.get_state(), state)          # nothing drawn


def test_the_masked_view_takes_a_share_of_the_rows_and_masks_only_real_tokens():
    ids = torch.tensor([[101, 5, 6, 7, 102, 0]] * 8)
    attention = torch.tensor([[1, 1, 1, 1, 1, 0]] * 8)
    rows, view = masked_view(ids, attention, share=0.25, mask_id=103,
                             special_ids=torch.tensor([0, 101, 102]),
                             generator=torch.Generator().manual_seed(0))
    assert len(rows) == 2 == len(set(rows.tolist())) and view.shape == (2, 6)
    assert (view[:, [0, 4, 5]] == torch.tensor([101, 102, 0])).all()
    assert set(view[:, 1:4].flatten().tolist()) <= {5, 6, 7, 103}


def test_consistency_is_cross_entropy_in_the_set_and_kl_outside():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    view = torch.tensor([[1.0, 0.0], [0.0, 3.0], [0.0, 2.0]])
    targets = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    weights = torch.tensor([1.0, 1.0, 0.0])                   # row 2: out of its set
    in_set, out_of_set = consistency_losses(view, logits, targets, weights)
    logp = F.log_softmax(view, 1)
    torch.testing.assert_close(in_set, -(targets[:2] * logp[:2]).sum() / 2)
    p = torch.tensor([0.5, 0.5])
    torch.testing.assert_close(out_of_set, (p * (p.log() - logp[2])).sum())
    _, none_out = consistency_losses(view, logits, targets, torch.ones(3))
    assert none_out.item() == 0.0


def test_the_one_standard_error_rule_only_tolerates_what_the_validation_slice_cannot_tell():
    from candist_core.student import tolerance
    # 0.953 vs 0.947 on 500 held-back texts: less than one standard error (0.0095) apart.
    assert tolerance(0.953, 500, "one_se") == pytest.approx(0.00947, abs=1e-4)
    assert 0.953 - 0.947 < tolerance(0.953, 500, "one_se")
    assert tolerance(0.953, 500, "best") == 0.0
    assert tolerance(1.0, 500, "one_se") == 0.0 and tolerance(0.9, 0, "one_se") == 0.0
    assert tolerance(3.0, 10, "one_se") == 0.0        # "the last epoch" scores (no slice)
    with pytest.raises(StudentError, match="selection rule"):
        StudentConfig(selection_rule="median")
    with pytest.raises(StudentError, match="Patience"):
        StudentConfig(patience=-1)
