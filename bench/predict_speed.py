"""Speed of ``predict`` against a bare transformers pipeline on the same student folder,
batch size and device, and against the 100,000-row import.

    .venv/bin/python bench/predict_speed.py [--texts 2000] [--batch-size 64] [--device auto]

The texts are Banking77's and TREC's test splits (short and long questions mixed, in file
order). The student is MiniLM-L6 with an untrained linear head saved as a model folder:
speed does not depend on what the weights learned. Measured, all in one process:

- ``predict_file``: the whole command (read the CSV, tokenize, infer, write the CSV);
- ``Predictor.probabilities``: inference alone;
- ``pipeline("text-classification", trust_remote_code=True)`` with ``top_k=None`` and the
  same ``batch_size``: the bare transformers way (goal: predict within 1.2x of its time);
- ``import_csv`` of 100,000 rows (the import speed users already know).

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from candist_core.encoder import device_description, pick_device  # noqa: E402
from candist_core.importing import ImportOptions, import_csv  # noqa: E402
from candist_core.model_dir import save_model_dir  # noqa: E402
from candist_core.predicting import PredictOptions, Predictor, predict_file  # noqa: E402
from candist_core.schema import load_schema  # noqa: E402
from candist_core.store import Store  # noqa: E402
from candist_core.student import choose_max_length, load_student  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def texts(n: int) -> pd.DataFrame:
    frames = [pd.read_csv(DATASETS / name / "test.csv", dtype=str, keep_default_na=False)
              for name in ("banking77", "trec")]
    frame = pd.concat(frames, ignore_index=True)
    reps = -(-n // len(frame))
    return pd.concat([frame] * reps, ignore_index=True).iloc[:n][["text"]]


def import_rate(tmp: Path, rows: int = 100_000) -> float:
    source = pd.read_csv(DATASETS / "trec" / "train.csv", dtype=str, keep_default_na=False)
    frame = pd.concat([source] * -(-rows // len(source)), ignore_index=True).iloc[:rows]
    frame.to_csv(tmp / "big.csv", index=False)
    with Store(tmp / "import.db") as store:
        project = store.create_project("p", load_schema(DATASETS / "trec" / "labels.json"))
        start = time.perf_counter()
        import_csv(store, project.id, tmp / "big.csv", options=ImportOptions(gold_col="label"))
        return rows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = pick_device(args.device)
    torch.set_grad_enabled(False)
    frame = texts(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, tokenizer = load_student(None, 77)
        lengths = [len(x) for x in tokenizer(frame.text.tolist())["input_ids"]]
        folder = save_model_dir(model.eval(), tokenizer, [f"l{i}" for i in range(77)],
                                tmp / "student", max_tokens=choose_max_length(lengths))
        frame.to_csv(tmp / "in.csv", index=False)
        options = PredictOptions(batch_size=args.batch_size, device=args.device)
        predictor = Predictor.from_dir(folder, device=args.device)
        predictor.probabilities(frame.text.tolist()[:64])              # warm-up

        start = time.perf_counter()
        predictor.probabilities(frame.text.tolist(), batch_size=args.batch_size)
        inference = time.perf_counter() - start

        start = time.perf_counter()
        predict_file(folder, tmp / "in.csv", tmp / "out.csv", options=options,
                     predictor=predictor)
        command = time.perf_counter() - start

        from transformers import pipeline
        classify = pipeline("text-classification", model=str(folder), trust_remote_code=True,
                            device=device)
        classify(frame.text.tolist()[:64], batch_size=args.batch_size, top_k=None,
                 truncation=True)                                       # warm-up
        start = time.perf_counter()
        classify(frame.text.tolist(), batch_size=args.batch_size, top_k=None, truncation=True)
        bare = time.perf_counter() - start
        imports = import_rate(tmp)
    n = len(frame)
    print(json.dumps({
        "texts": n, "batch_size": args.batch_size, "device": device_description(device),
        "threads": torch.get_num_threads(),
        "predict_texts_per_s": round(n / command, 1),
        "predict_inference_texts_per_s": round(n / inference, 1),
        "pipeline_texts_per_s": round(n / bare, 1),
        "predict_time_over_pipeline": round(command / bare, 3),
        "goal_within_1_2x": command <= 1.2 * bare,
        "import_rows_per_s": round(imports, 1),
        "import_over_predict_rate": round(imports / (n / command), 1),
    }))


if __name__ == "__main__":
    main()
