"""bench/strong_teacher.py: the simulated teacher has the statistics it is asked for, and its
mistakes are the labels a real teacher would confuse."""
from __future__ import annotations

import sys

import numpy as np

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from strong_teacher import Quality, simulated_sets  # noqa: E402


def test_simulated_sets_match_the_quality_and_err_towards_the_teachers_ranking():
    rng = np.random.default_rng(1)
    n, c = 2000, 6
    gold = rng.integers(0, c, n)
    probs = rng.dirichlet(np.ones(c), n)
    quality = Quality(top1=0.8, coverage=0.93, mean_labels=1.7)
    sets = simulated_sets(gold, probs, quality, seed=0)
    assert abs(np.mean([s[0] == g for s, g in zip(sets, gold)]) - 0.8) < 0.005
    assert abs(np.mean([g in s for s, g in zip(sets, gold)]) - 0.93) < 0.005
    assert abs(np.mean([len(s) for s in sets]) - 1.7) < 0.05
    assert all(len(set(s)) == len(s) for s in sets)
    # a wrong first label is the label the offline ranking puts highest after the gold one
    for s, g, p in zip(sets, gold, probs):
        if s[0] != g:
            assert s[0] == next(j for j in np.argsort(-p) if j != g)
    # hard texts (a low offline probability of the gold label) are wrong more often
    wrong = np.array([s[0] != g for s, g in zip(sets, gold)])
    p_gold = probs[np.arange(n), gold]
    assert p_gold[wrong].mean() < p_gold[~wrong].mean()
