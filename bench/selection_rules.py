"""Label-free epoch selection rules, scored against gold (issue #13, item 5).

    .venv/bin/python bench/distill_quality.py --strategies ca_all --methods sa,candist \\
        --epochs 10 --no-test > runs.jsonl
    .venv/bin/python bench/selection_rules.py runs.jsonl

Reads the per-epoch records distill_quality prints (pool accuracy vs gold, which nothing
in training sees, and the label-free signals of every epoch) and replays each rule on
them. A rule with patience is replayed exactly: stopping early does not change the epochs
before the stop (the learning-rate schedule is set by the epoch budget), so a run with
``--epochs 10 --patience p`` is the 10-epoch run cut where the rule stops. Prints one JSON
line per (dataset, method, rule) and a table on stderr.
"""
from __future__ import annotations

import json
import math
import sys


def first_best(scores: list[float], upto: int) -> int:
    """Index of the first maximum of scores[:upto] (the app's ``best`` rule)."""
    window = scores[:upto]
    return window.index(max(window))


def stop_at(scores: list[float], patience: int) -> int:
    """How many epochs a run with this patience trains (all of them when 0)."""
    best, best_at = -math.inf, 0
    for i, s in enumerate(scores):
        if s > best:
            best, best_at = s, i
        if patience and i - best_at >= patience:
            return i + 1
    return len(scores)


def one_se(scores: list[float], n: int, upto: int) -> int:
    """The latest epoch whose score is within one binomial standard error of the best."""
    window = scores[:upto]
    best = max(window)
    se = math.sqrt(max(best * (1 - best), 1e-12) / max(n, 1))
    return max(i for i, s in enumerate(window) if s >= best - se)


def rules(record: dict) -> dict[str, int]:
    """Rule name -> the 0-based epoch it keeps."""
    agree = record["per_epoch_selection"]
    mass = record["per_epoch_set_mass"]
    n = record.get("selection_n") or 0
    epochs = len(agree)
    picks = {}
    for budget in (4, epochs):     # 4: within the first 4 epochs of the longer schedule
        span = f"epochs 1-{budget}"
        picks[f"agreement, {span}"] = first_best(agree, budget)
        picks[f"set mass, {span}"] = first_best(mass, budget)
        picks[f"agreement one-SE, {span}"] = one_se(agree, n, budget)
        picks[f"last epoch, {span}"] = budget - 1
    for patience in (1, 2, 3):
        for name, signal in (("agreement", agree), ("set mass", mass)):
            upto = stop_at(signal, patience)
            picks[f"{name}, patience {patience}"] = first_best(signal, upto)
    picks["oracle (best gold epoch)"] = first_best(record["per_epoch_accuracy"], epochs)
    return picks


def main(paths: list[str]) -> None:
    records = [json.loads(line) for path in paths for line in open(path)
               if line.startswith("{") and "per_epoch_selection" in line]
    table: dict[str, dict[str, float]] = {}
    for r in records:
        column = f"{r['dataset']} {r['method']}"
        for rule, epoch in rules(r).items():
            accuracy = r["per_epoch_accuracy"][epoch]
            print(json.dumps({"dataset": r["dataset"], "method": r["method"], "rule": rule,
                              "epoch": epoch + 1, "accuracy": accuracy}), flush=True)
            table.setdefault(rule, {})[column] = accuracy
    columns = sorted({c for row in table.values() for c in row})
    print("| rule | " + " | ".join(columns) + " |", file=sys.stderr)
    print("| --- |" + " --- |" * len(columns), file=sys.stderr)
    for rule, row in table.items():
        print(f"| {rule} | " + " | ".join(f"{100 * row[c]:.1f}" if c in row else "-"
                                          for c in columns) + " |", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
