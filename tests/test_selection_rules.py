"""bench/selection_rules.py replays epoch-selection rules on a run's per-epoch record: a
rule with patience stops where the app would, and picks the best epoch seen by then."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

RECORD = {"dataset": "toy", "method": "candist", "selection_n": 100,
          "per_epoch_accuracy": [0.50, 0.60, 0.70, 0.65, 0.72, 0.71],
          "per_epoch_selection": [0.80, 0.90, 0.88, 0.89, 0.87, 0.91],
          "per_epoch_set_mass": [0.50, 0.60, 0.70, 0.72, 0.71, 0.73]}


def test_each_rule_keeps_the_epoch_the_app_would(tmp_path):
    runs = tmp_path / "runs.jsonl"
    runs.write_text("not json: a log line\n" + json.dumps(RECORD) + "\n")
    out = subprocess.run([sys.executable, "bench/selection_rules.py", str(runs)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    picked = {r["rule"]: (r["epoch"], r["accuracy"]) for r in map(json.loads,
                                                                  out.stdout.splitlines())}
    assert picked["agreement, epochs 1-6"] == (6, 0.71)
    assert picked["agreement, epochs 1-4"] == (2, 0.60)
    # patience 1: epoch 3 does not beat epoch 2, so the run stops after epoch 3
    assert picked["agreement, patience 1"] == (2, 0.60)
    # patience 3: epochs 3-5 never beat epoch 2, so it stops after epoch 5
    assert picked["agreement, patience 3"] == (2, 0.60)
    # one SE of the best 0.90 on 100 texts is 0.03: epoch 4 (0.89) is the latest within it
    assert picked["agreement one-SE, epochs 1-4"] == (4, 0.65)
    assert picked["set mass, patience 1"] == (4, 0.65)
    assert picked["last epoch, epochs 1-6"] == (6, 0.71)
    assert picked["oracle (best gold epoch)"] == (5, 0.72)
    assert "| agreement, patience 1 |" in out.stderr
