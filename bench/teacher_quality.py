"""Offline teacher quality on the shared datasets' training splits.

    .venv/bin/python bench/teacher_quality.py [--datasets trec,banking77,medical_abstracts]

Prints one JSON line per dataset: SA accuracy, and coverage (1-alpha) / mean #labels for
ca_add and ca_all at the default settings, plus a small sweep of the keep-ratio r used to
choose those defaults. Embeddings are computed once per dataset.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from candist_core.encoder import shared_encoder  # noqa: E402
from candist_core.metrics import candidate_metrics  # noqa: E402
from candist_core.schema import load_schema  # noqa: E402
from candist_core.teacher import (OfflineTeacher, TeacherConfig, candidate_sets,  # noqa: E402
                                  rank_labels)

DATASETS = ROOT.parent / "shared" / "datasets"


def evaluate(sims, golds, names, *, temperature, strategy, r_add, r_all):
    probs = rank_labels(sims, temperature=temperature)
    sets = candidate_sets(probs, strategy=strategy, r_add=r_add, r_all=r_all)
    cands = [[names[j] for j in s] for s in sets]
    m = candidate_metrics(cands, golds, num_classes=len(names), single=[c[0] for c in cands])
    return {"coverage": round(m["coverage"], 4), "mean_labels": round(m["mean_labels"], 3),
            "f1": round(m["f1"], 4), "sa_accuracy": round(m["sa_accuracy"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="trec,banking77,medical_abstracts")
    args = parser.parse_args()
    d = TeacherConfig()
    teacher = OfflineTeacher(shared_encoder())
    for name in args.datasets.split(","):
        schema = load_schema(DATASETS / name / "labels.json")
        frame = pd.read_csv(DATASETS / name / "train.csv", dtype=str, keep_default_na=False)
        start = time.perf_counter()
        sims = teacher.similarities(schema, frame["text"].tolist())
        seconds = time.perf_counter() - start
        golds, names = frame["label"].tolist(), schema.names
        common = dict(temperature=d.softmax_temperature, r_add=d.r_add, r_all=d.r_all)
        out = {"dataset": name, "n": len(frame), "classes": len(names),
               "encode_s": round(seconds, 1),
               "sa": evaluate(sims, golds, names, strategy="sa", **common),
               "ca_add": evaluate(sims, golds, names, strategy="ca_add", **common),
               "ca_all": evaluate(sims, golds, names, strategy="ca_all", **common),
               "sweep_r": {str(r): evaluate(sims, golds, names, strategy="ca_add",
                                            temperature=d.softmax_temperature, r_add=r,
                                            r_all=r)
                           for r in (0.7, 0.5, 0.4, 0.3, 0.2)},
               "sweep_temperature_sa": {str(t): evaluate(sims, golds, names, strategy="ca_add",
                                                         temperature=t, r_add=d.r_add,
                                                         r_all=d.r_all)
                                        for t in (0.02, 0.05, 0.1)}}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
