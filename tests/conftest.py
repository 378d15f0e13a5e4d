"""Shared fixtures: real SQLite files in tmp_path and the shared datasets."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from candist_core.schema import load_schema
from candist_core.store import Store

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"shared dataset {name} not found at {path}")
    return path


@pytest.fixture
def trec_dir() -> Path:
    return dataset("trec")


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "candist.db")
    yield s
    s.close()


@pytest.fixture
def trec_project(store, trec_dir):
    return store.create_project("trec", load_schema(trec_dir / "labels.json"))


def run_cli(*args: str, check: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m candist_core`` in a real subprocess, as a user would."""
    proc = subprocess.run([sys.executable, "-m", "candist_core", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"CLI failed ({proc.returncode}): {proc.stderr}")
    return proc
