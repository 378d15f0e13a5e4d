"""Time import and export of a 100,000-row CSV built from the TREC training texts.

    .venv/bin/python bench/import_export.py [--rows 100000]

Prints one JSON object. Goal: import < 30 s, export < 10 s on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from candist_core.exporting import write_export  # noqa: E402
from candist_core.importing import ImportOptions, import_csv  # noqa: E402
from candist_core.schema import load_schema  # noqa: E402
from candist_core.store import Store  # noqa: E402

TREC = ROOT.parent / "shared" / "datasets" / "trec"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    source = pd.read_csv(TREC / "train.csv", dtype=str, keep_default_na=False)
    reps = -(-args.rows // len(source))
    frame = pd.concat([source] * reps, ignore_index=True).iloc[:args.rows]
    frame.insert(0, "id", [f"r{i}" for i in range(len(frame))])
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "big.csv"
        frame.to_csv(csv_path, index=False)
        with Store(Path(tmp) / "b.db") as store:
            project = store.create_project("bench", load_schema(TREC / "labels.json"))
            start = time.perf_counter()
            report = import_csv(store, project.id, csv_path,
                                options=ImportOptions(gold_col="label", id_col="id"))
            import_s = time.perf_counter() - start
            start = time.perf_counter()
            reimport = import_csv(store, project.id, csv_path,
                                  options=ImportOptions(gold_col="label", id_col="id"))
            reimport_s = time.perf_counter() - start
            start = time.perf_counter()
            summary = write_export(store, project.id, Path(tmp) / "out.csv")
            export_s = time.perf_counter() - start
    print(json.dumps({"rows": args.rows, "imported": report.imported,
                      "import_s": round(import_s, 2), "reimport_added": reimport.imported,
                      "reimport_s": round(reimport_s, 2), "exported": summary.rows,
                      "export_s": round(export_s, 2),
                      "import_rows_per_s": round(args.rows / import_s),
                      "export_rows_per_s": round(args.rows / export_s)}))


if __name__ == "__main__":
    main()
