"""bench/learning_curve.py --quick: the learning loop run end to end from outside the app
(real encoder, real SQLite, the app's update), small enough for the suite."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, dataset


@pytest.mark.slow
def test_the_quick_learning_curve_records_every_round_of_every_order_and_learns():
    dataset("trec")
    proc = subprocess.run([sys.executable, "bench/learning_curve.py", "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    header = records[0]
    start = next(r for r in records if r.get("decisions") == 0)
    rounds = [r for r in records if "order" in r]
    assert len(rounds) == len(header["orders"]) * header["rounds"]
    for order in header["orders"]:
        mine = [r for r in rounds if r["order"] == order]
        assert [r["decisions"] for r in mine] == [20, 40, 60]
        assert all(r["served"] == 20 for r in mine)
        # Every decision is a gold label: the export ends better than it started, and the
        # updated student is scored on test texts it never saw.
        assert mine[-1]["export_accuracy"] > start["export_accuracy"]
        assert all(0 <= r["test_accuracy"] <= 1 for r in mine)
        assert all(r["update_seconds"] < 60 for r in mine)
