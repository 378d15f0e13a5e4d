"""Distribution Refinery, Eq. 1-5, on small hand-computed tensors."""
import torch

from candist_core.refinery import (PLAIN, Components, Partition, high_confidence,
                                   out_of_candidate, partition, refined_targets,
                                   renormalized_targets, sharpen, small_loss,
                                   soft_cross_entropy, uniform_targets)

T = torch.tensor
P = T([[0.5, 0.3, 0.2],
       [0.1, 0.2, 0.7],
       [0.6, 0.3, 0.1],
       [0.97, 0.02, 0.01]])
CAND = T([[True, True, False],
          [True, True, False],
          [True, False, True],
          [False, True, True]])


def close(a, b):
    torch.testing.assert_close(a, T(b, dtype=a.dtype), atol=1e-4, rtol=0)


def test_uniform_targets_spread_over_the_set():
    close(uniform_targets(CAND), [[.5, .5, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])


def test_eq1_renormalises_the_prediction_inside_the_set():
    close(renormalized_targets(P, CAND), [[0.625, 0.375, 0], [1 / 3, 2 / 3, 0],
                                          [6 / 7, 0, 1 / 7], [0, 2 / 3, 1 / 3]])


def test_eq1_falls_back_to_uniform_when_the_set_has_no_mass():
    close(renormalized_targets(T([[1.0, 0.0, 0.0]]), T([[False, True, True]])), [[0, .5, .5]])


def test_eq2_flags_predictions_outside_the_set():
    assert out_of_candidate(P, CAND).tolist() == [False, True, False, True]


def test_eq3_sharpening_with_gamma():
    q = T([[0.625, 0.375, 0.0]])
    a, b = 0.625 ** (1 / 0.85), 0.375 ** (1 / 0.85)
    close(sharpen(q, 0.85), [[a / (a + b), b / (a + b), 0]])


def test_eq3_small_loss_is_chosen_within_each_predicted_class():
    probs = T([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.7, 0.3], [0.1, 0.9]])
    targets = T([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    eligible = torch.ones(6, dtype=torch.bool)
    # losses -log p[target]: .105, .511, 1.609, .598, 1.204, .105. Class 0 is predicted by
    # rows 0, 1, 4 and class 1 by rows 2, 3, 5: delta 1/3 keeps the smallest of each class.
    assert small_loss(probs, targets, eligible, delta=1 / 3).tolist() == [
        True, False, False, False, False, True]
    assert small_loss(probs, targets, eligible, delta=1 / 3, classwise=False).tolist() == [
        True, False, False, False, False, True]
    assert small_loss(probs, targets, eligible, delta=0.5, classwise=False).tolist() == [
        True, True, False, False, False, True]
    assert small_loss(probs, targets, eligible, delta=0.5).tolist() == [
        True, True, False, True, False, True]
    eligible[0] = False
    assert not small_loss(probs, targets, eligible, delta=1.0)[0]


def test_eq4_high_confidence_needs_out_of_set_and_tau():
    out = out_of_candidate(P, CAND)
    assert high_confidence(P, out, tau=0.95).tolist() == [False, False, False, True]
    assert high_confidence(P, out, tau=0.99).tolist() == [False, False, False, False]


def test_eq5_targets_and_weights():
    part = partition(P, CAND, delta=1.0, tau=0.95)
    assert part.out.tolist() == [False, True, False, True]
    assert part.high_conf.tolist() == [False, False, False, True]
    targets, weights = refined_targets(P, CAND, part, gamma=0.85)
    assert weights.tolist() == [1, 0, 1, 1]          # D_out - D_hc gets no term
    close(targets[3:], [[1, 0, 0]])                   # one-hot of the student's argmax
    assert part.small_loss.tolist() == [True, False, True, False]
    close(targets[0:1], sharpen(renormalized_targets(P[:1], CAND[:1]), 0.85).tolist())


def test_human_labels_are_never_filtered_selected_or_refined():
    fixed = T([False, True, False, True])
    part = partition(P, CAND, delta=1.0, tau=0.5, fixed=fixed)
    assert not (part.out & fixed).any() and not (part.small_loss & fixed).any()
    human = T([[0.0, 0.0, 1.0]] * 4)
    targets, weights = refined_targets(P, CAND, part, gamma=0.85, fixed=fixed,
                                       fixed_targets=human)
    assert weights[1] == 1 and weights[3] == 1
    close(targets[[1, 3]], [[0, 0, 1], [0, 0, 1]])


def test_every_component_can_be_switched_off():
    part = partition(P, CAND, delta=1.0, tau=0.5, components=PLAIN)
    assert not part.out.any() and not part.small_loss.any() and not part.high_conf.any()
    targets, weights = refined_targets(P, CAND, part, gamma=0.85, components=PLAIN)
    close(targets, uniform_targets(CAND).tolist())
    assert weights.tolist() == [1, 1, 1, 1]
    no_sharpen = partition(P, CAND, delta=1.0, tau=0.95,
                           components=Components(sharpen=False))
    assert not no_sharpen.small_loss.any()


def test_soft_cross_entropy_matches_the_definition():
    q = T([[0.25, 0.75, 0.0]])
    p = T([[0.5, 0.25, 0.25]])
    expected = -(0.25 * torch.log(T(0.5)) + 0.75 * torch.log(T(0.25)))
    close(soft_cross_entropy(p, q), [expected.item()])
    logits = torch.log(p)
    close(soft_cross_entropy(logits, q, logits=True), [expected.item()])


def test_partition_is_a_plain_record():
    part = Partition(T([True]), T([False]), T([False]))
    assert part.out.item() and not part.small_loss.item()
