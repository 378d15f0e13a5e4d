"""Ceiling of the student: the default student trained on the GOLD labels of a pool, scored on
the dataset's held-out test split. No student distilled from a teacher's candidate sets can be
expected to beat this, so it bounds what "teacher SA + N points" can ask for.

    .venv/bin/python bench/supervised_ceiling.py --datasets medical_abstracts,banking77

Same pools as bench/distill_quality.py (seeded samples of the training splits, same sizes),
every pool label a fixed human target, the default StudentConfig, the last epoch (no
validation slice is held back, so every gold label trains). Prints one JSON line per dataset.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from candist_core.schema import label_texts, load_schema  # noqa: E402
from candist_core.student import Distiller, StudentConfig, TrainingData  # noqa: E402
from distill_quality import DATASETS, SIZES, read_split  # noqa: E402


def ceiling(name: str, size: int, config: StudentConfig) -> dict:
    schema = load_schema(DATASETS / name / "labels.json")
    names = schema.names
    pool, test = read_split(name, "train", size), read_split(name, "test", size)
    texts = pool.text.tolist() + test.text.tolist()
    gold = torch.tensor([names.index(g) for g in list(pool.label) + list(test.label)])
    n, k = len(texts), len(pool)
    human = torch.full((n,), -1, dtype=torch.long)
    human[:k] = gold[:k]                                   # the pool: gold as human labels
    reported = torch.full((n,), -1, dtype=torch.long)
    reported[k:] = gold[k:]                                # per-epoch accuracy: test only
    data = TrainingData(list(range(n)), texts, names, torch.zeros((n, len(names)), dtype=bool),
                        human, reported, label_texts=label_texts(schema))
    start = time.perf_counter()
    result = Distiller(config).fit(data)
    accuracy = float((result.probs[k:].argmax(1) == gold[k:].numpy()).mean())
    return {"dataset": name, "train_gold": k, "test": n - k, "test_accuracy": round(accuracy, 4),
            "head": result.history[-1]["head"], "epochs": len(result.history),
            "per_epoch_test_accuracy": [round(e["gold_accuracy"], 4) for e in result.history],
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="trec,banking77,medical_abstracts")
    args = parser.parse_args()
    # Every pool label trains: no human validation slice, so the last epoch is kept.
    config = replace(StudentConfig(method="uniform"), min_human_validation=10 ** 9)
    for name in args.datasets.split(","):
        print(json.dumps(ceiling(name, SIZES[name], config)), flush=True)


if __name__ == "__main__":
    main()
