"""Agreement between reviewers: kappas worked out by hand, checked against scikit-learn and
statsmodels on seeded random data, and the report read from a real store."""
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from candist_core.agreement import (agreement_json, agreement_report, cohen_kappa,
                                    consensus_agreement, conflicts, count_table,
                                    decisions_per_hour, fleiss_kappa, group_ratings,
                                    reference_agreement, specific_agreement)
from candist_core.schema import build_schema
from candist_core.store import Store

# Two raters, ten texts: 4 x (a, a), 2 x (a, b), 3 x (b, b), 1 x (b, a).
A = list("aaaaaabbbb")
B = list("aaaabbbbba")


def test_cohen_kappa_by_hand():
    # p_o = 7 agreeing texts / 10 = 0.7. Rater A: a 6/10, b 4/10; rater B: a 5/10, b 5/10.
    # p_e = 0.6 * 0.5 + 0.4 * 0.5 = 0.5. kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    e = cohen_kappa(A, B, labels=["a", "b"])
    assert e.value == pytest.approx(0.4)
    assert e.n == 10 and e.low <= 0.4 <= e.high
    assert cohen_kappa(A, B, labels=["a", "b"]) == e          # seeded: the same interval


def test_fleiss_kappa_by_hand():
    # Three texts, three raters each, counts of (a, b): (3, 0), (2, 1), (0, 3).
    # P_i = (sum n_ij^2 - 3) / (3 * 2): 1, (4 + 1 - 3) / 6 = 1/3, 1 -> P_bar = 7/9.
    # p_a = 5/9, p_b = 4/9 -> P_e = 25/81 + 16/81 = 41/81.
    # kappa = (63/81 - 41/81) / (40/81) = 22/40 = 0.55.
    e = fleiss_kappa([[3, 0], [2, 1], [0, 3]])
    assert e.value == pytest.approx(0.55)
    assert e.n == 3


def test_specific_agreement_by_hand():
    # Label a: 2 * 4 agreeing a pairs / (6 a's of A + 5 a's of B) = 8/11;
    # label b: 2 * 3 / (4 + 5) = 2/3.
    items = {i: {"ann": x, "bob": y} for i, (x, y) in enumerate(zip(A, B))}
    out = specific_agreement(items, ["a", "b", "c"])
    assert out["a"] == {"value": pytest.approx(8 / 11), "ratings": 11}
    assert out["b"] == {"value": pytest.approx(2 / 3), "ratings": 9}
    assert out["c"] == {"value": None, "ratings": 0}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohen_kappa_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = ["w", "x", "y", "z"]
    a = rng.choice(labels, 400)
    b = np.where(rng.random(400) < 0.5 + 0.1 * seed, a, rng.choice(labels, 400))
    e = cohen_kappa(list(a), list(b), labels=labels)
    assert e.value == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    # The bootstrap interval lands near statsmodels' large-sample one.
    table = np.zeros((4, 4))
    for x, y in zip(a, b):
        table[labels.index(x), labels.index(y)] += 1
    large = sm_cohens_kappa(table)
    assert abs(e.low - large.kappa_low) < 0.03 and abs(e.high - large.kappa_upp) < 0.03


@pytest.mark.parametrize("raters", [2, 3, 5])
def test_fleiss_kappa_matches_statsmodels(raters):
    rng = np.random.default_rng(raters)
    truth = rng.integers(0, 3, 300)
    table = np.zeros((300, 3))
    for i, t in enumerate(truth):
        for _ in range(raters):
            table[i, t if rng.random() < 0.7 else rng.integers(0, 3)] += 1
    e = fleiss_kappa(table)
    assert e.value == pytest.approx(sm_fleiss_kappa(table), abs=1e-12)
    assert e.low < e.value < e.high and e.high - e.low < 0.2


def test_perfect_agreement_on_one_label_is_reported_as_one():
    assert cohen_kappa(["a", "a"], ["a", "a"], labels=["a", "b"]).value == 1.0


def test_consensus_reference_conflicts_and_pace():
    rows = [(1, "ann", "a"), (1, "bob", "a"), (1, "cy", "b"),
            (2, "ann", "b"), (2, "bob", "a"),
            (3, "ann", "a")]
    items = group_ratings(rows)
    vs = consensus_agreement(items)
    # ann: text 1 (others a, b tie: left out), text 2 (other says a, ann b) -> 0 of 1;
    # bob: text 1 (others a, b tie), text 2 (ann says b) -> 0 of 1; cy: text 1 (a) -> 0/1.
    assert (vs["ann"].k, vs["ann"].n) == (0, 1) and (vs["cy"].k, vs["cy"].n) == (0, 1)
    gold = reference_agreement(rows, {1: "a", 3: "a"})
    assert (gold["ann"].k, gold["ann"].n) == (2, 2) and (gold["cy"].k, gold["cy"].n) == (0, 1)
    audit = reference_agreement(rows, {1: "a"}, not_by={1: "ann"})
    assert "ann" not in audit and audit["bob"].k == 1
    assert [c["sample_id"] for c in conflicts(items, {})] == [1, 2]
    assert [c["sample_id"] for c in conflicts(items, {2: "a"})] == [1]
    assert count_table(items, ["a", "b"]).tolist() == [[2, 1], [1, 1]]
    times = [("ann", "2026-01-01T10:00:00+00:00"), ("ann", "2026-01-01T10:00:30+00:00"),
             ("ann", "2026-01-01T10:01:00+00:00"), ("ann", "2026-01-01T12:00:00+00:00"),
             ("bob", "2026-01-01T10:00:00+00:00")]
    # ann: two gaps of 30 s (the 2-hour gap is a break) -> 2 / 60 s = 120 an hour.
    assert decisions_per_hour(times) == {"ann": pytest.approx(120.0), "bob": None}


def test_the_report_reads_raters_resolutions_and_gold_from_the_store(tmp_path):
    with Store(tmp_path / "a.db") as store:
        p = store.create_project("p", build_schema("t", ["a", "b"]))
        store.insert_samples(p.id, [(str(i), f"t{i}", "a") for i in range(6)])
        ids = [s.id for s in store.samples(p.id)]
        assert agreement_report(store, p.id) is None
        for sid, x, y in zip(ids, A, B):
            store.record_decision(p.id, sid, action="label", label=x, who="ann")
            store.record_decision(p.id, sid, action="label", label=y, who="bob")
        store.record_decision(p.id, ids[5], action="label", label="b", who="cy")
        store.undo_decision(p.id, who="cy")                 # an undone label is no rating
        store.resolve(p.id, ids[4], "a", who="boss")        # a resolution is no rating
        report = agreement_report(store, p.id)
        assert report["items"] == 6 and report["raters"] == ["ann", "bob"]
        # texts 0-5: (a,a) x4, (a,b) x2 -> p_o = 4/6; A all a, B a 4/6 -> p_e = 4/6 -> 0.
        assert report["fleiss_kappa"].value == pytest.approx(
            sm_fleiss_kappa(np.array([[2, 0]] * 4 + [[1, 1]] * 2)))
        assert [c["sample_id"] for c in report["conflicts"]] == [ids[5]]
        assert report["vs_gold"]["ann"].k == 6 and report["vs_gold"]["bob"].k == 4
        summary = agreement_json(report)
        assert summary["items"] == 6 and summary["conflicts"] == 1
        assert [(c["a"], c["b"], c["n"]) for c in summary["cohen_kappa"]] == [("ann", "bob", 6)]
        assert set(summary["fleiss_kappa"]) == {"value", "low", "high"}
