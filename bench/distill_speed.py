"""Training-loop throughput: our Distiller (CanDist, refinery and regularisers on) against a
bare transformers forward/backward loop over the same model, batch size and length.

    .venv/bin/python bench/distill_speed.py [--n 640] [--batch-size 32] [--method candist]

Prints one JSON object; goal: ours within 1.5x of the bare loop (ratio <= 1.5).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from candist_core.encoder import pick_device  # noqa: E402
from candist_core.schema import load_schema  # noqa: E402
from candist_core.student import (Distiller, StudentConfig, TrainingData,  # noqa: E402
                                  choose_max_length, load_student)

TREC = ROOT.parent / "shared" / "datasets" / "trec"


def data(n: int) -> TrainingData:
    frame = pd.read_csv(TREC / "train.csv").sample(n=n, random_state=0)
    names = load_schema(TREC / "labels.json").names
    gold = torch.tensor([names.index(g) for g in frame["label"]])
    cand = F.one_hot(gold, len(names)).bool() | F.one_hot((gold + 1) % len(names),
                                                          len(names)).bool()
    return TrainingData(list(range(n)), frame["text"].tolist(), names, cand,
                        torch.full((n,), -1), torch.full((n,), -1))


def bare_loop(d: TrainingData, batch_size: int, max_length: int, device) -> float:
    """Samples/s of the plainest fine-tuning loop: tokenize per batch, forward, CE, step."""
    torch.manual_seed(0)
    model, tokenizer = load_student(None, len(d.labels))
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    targets = d.cand.float() / d.cand.sum(1, keepdim=True)
    start = time.perf_counter()
    for i in range(0, len(d.texts), batch_size):
        enc = tokenizer(d.texts[i:i + batch_size], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt").to(device)
        logits, _ = model(enc["input_ids"], enc["attention_mask"])
        loss = -(targets[i:i + batch_size].to(device) * F.log_softmax(logits, 1)).sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return len(d.texts) / (time.perf_counter() - start)


def ours(d: TrainingData, config: StudentConfig) -> dict:
    """Epoch 2 (refinery and regularisers active): its training steps alone, and the
    whole epoch including the eval pass that feeds the refinery and model selection."""
    steps, epochs = [], []
    trainer = Distiller(config, on_step=lambda done, total: steps.append(time.perf_counter()),
                        on_epoch=lambda m: epochs.append(time.perf_counter()))
    trainer.fit(d)
    second = [t for t in steps if t > epochs[0]]
    per_step = (second[-1] - second[0]) / max(1, len(second) - 1)
    return {"train_samples_per_s": config.batch_size / per_step,
            "epoch_samples_per_s": len(d.texts) / (epochs[1] - epochs[0])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--method", default="candist")
    args = parser.parse_args()
    d = data(args.n)
    _, tokenizer = load_student(None, len(d.labels))
    max_length = choose_max_length([len(x) for x in tokenizer(d.texts)["input_ids"]])
    device = pick_device("auto")
    config = StudentConfig(method=args.method, epochs=2, warmup_epochs=1, min_warmup_steps=0,
                           batch_size=args.batch_size, max_length=max_length, holdout=0.0)
    bare = bare_loop(d, args.batch_size, max_length, device)
    mine = ours(d, config)
    print(json.dumps({"device": device.type, "n": args.n, "batch_size": args.batch_size,
                      "max_length": max_length, "method": args.method,
                      "bare_samples_per_s": round(bare, 1),
                      "ours_samples_per_s": round(mine["train_samples_per_s"], 1),
                      "ratio_bare_over_ours": round(bare / mine["train_samples_per_s"], 3),
                      "ours_epoch_with_eval_samples_per_s": round(mine["epoch_samples_per_s"],
                                                                  1),
                      "ratio_incl_eval": round(bare / mine["epoch_samples_per_s"], 3)}))


if __name__ == "__main__":
    main()
