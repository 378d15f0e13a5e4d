"""The human-taught offline teacher: how much do human labels teach it? (issue #13, item 2)

    .venv/bin/python bench/human_teacher.py [--datasets trec,banking77,medical_abstracts]
                                            [--humans 50,100,200,400] [--seeds 3]

Pools: seeded samples of each shared dataset's train.csv (trec 1500, banking77 1500,
medical_abstracts 800), read as bench/distill_quality.py reads them. For each count of
simulated human labels (the gold labels of a seeded random sample of the pool), prints one
JSON line: the offline teacher's SA accuracy and CA_all coverage / mean set size on the
texts WITHOUT a human label, for no votes, ``prototypes`` and ``knn`` (k = 10), means over
``--seeds`` draws, with the mix weight each fit chose by leave-one-out on the human labels
and that leave-one-out accuracy. The texts are embedded once per dataset; the teacher's
probabilities and the votes are the same functions ``OfflineTeacher.probabilities`` calls.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from distill_quality import DATASETS, read_split  # noqa: E402
from candist_core.encoder import shared_encoder  # noqa: E402
from candist_core.human_votes import VOTE_KINDS, HumanVoteConfig, fit_human_votes  # noqa: E402
from candist_core.schema import label_texts, load_schema  # noqa: E402
from candist_core.teacher import TeacherConfig, candidate_sets, rank_labels  # noqa: E402

POOLS = {"trec": 1500, "banking77": 1500, "medical_abstracts": 800}


def scores(probs: np.ndarray, gold: np.ndarray, config: TeacherConfig) -> dict:
    sets = candidate_sets(probs, strategy="ca_all", r_add=config.r_add, r_all=config.r_all)
    return {"sa_accuracy": float(np.mean(probs.argmax(axis=1) == gold)),
            "ca_all_coverage": float(np.mean([g in s for s, g in zip(sets, gold)])),
            "ca_all_mean_labels": float(np.mean([len(s) for s in sets]))}


def mean(rows: list[dict]) -> dict:
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default=",".join(POOLS))
    parser.add_argument("--humans", default="50,100,200,400")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    config = TeacherConfig()
    encoder = shared_encoder()
    votes = HumanVoteConfig()
    for name in args.datasets.split(","):
        frame = read_split(name, "train", POOLS[name])
        schema = load_schema(DATASETS / name / "labels.json")
        start = time.perf_counter()
        vecs = encoder.encode(frame["text"].tolist())
        probs = rank_labels(vecs @ encoder.encode(label_texts(schema)).T,
                            temperature=config.softmax_temperature)
        encode_s = time.perf_counter() - start
        gold = np.array([schema.names.index(g) for g in frame["label"]])
        for n in map(int, args.humans.split(",")):
            results: dict[str, list[dict]] = {"none": [], **{k: [] for k in VOTE_KINDS}}
            for seed in range(args.seeds):
                human = np.random.default_rng(seed).choice(len(gold), n, replace=False)
                rest = np.setdiff1d(np.arange(len(gold)), human)
                results["none"].append(scores(probs[rest], gold[rest], config))
                for kind in VOTE_KINDS:
                    fitted = fit_human_votes(probs[human], vecs[human], gold[human], kind=kind,
                                             k=votes.k, temperature=config.softmax_temperature)
                    mixed = fitted.combine(probs[rest], vecs[rest])   # no own votes: unlabelled
                    results[kind].append({**scores(mixed, gold[rest], config),
                                          "weight": fitted.weight,
                                          "loo_accuracy": fitted.loo["accuracy"]})
            print(json.dumps({"dataset": name, "pool": len(gold), "classes": len(schema.names),
                              "human_labels": n, "seeds": args.seeds,
                              "encode_s": round(encode_s, 1),
                              **{k: mean(v) for k, v in results.items()}}), flush=True)


if __name__ == "__main__":
    main()
