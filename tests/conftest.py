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


# ------------------------------------------------------------ reliability summary line
@pytest.fixture
def tally(record_property):
    """Feeds the reliability summary line: ``tally("kill", "streamlit decisions")`` names a
    scenario of a kind (kill, fault, bad_input); ``tally(lost_decisions=0)`` adds counts."""
    def note(kind: str | None = None, name: str | None = None, **counts: int) -> None:
        if kind:
            record_property("reliability", (kind, name))
        for key, value in counts.items():
            record_property(key, value)
    return note


def reliability_summary(reports: list, failed: list) -> str | None:
    """One line: distinct scenarios per kind among passed tests, and the lost counts."""
    kinds = {"kill": set(), "fault": set(), "bad_input": set()}
    lost = {"lost_replies": 0, "lost_decisions": 0}
    seen = False
    for report in reports:
        for key, value in report.user_properties:
            if key == "reliability":
                seen = True
                kinds[value[0]].add(value[1])
            elif key in lost:
                lost[key] += int(value)
    broken = sum(1 for r in failed if "reliability/" in r.nodeid
                 or any(k == "reliability" for k, _ in r.user_properties))
    if not seen and not broken:
        return None
    line = (f"reliability: {len(kinds['kill'])} kill scenarios, {len(kinds['fault'])} fault "
            f"kinds, {len(kinds['bad_input'])} bad inputs passed; "
            f"{lost['lost_replies']} lost replies, {lost['lost_decisions']} lost decisions")
    return line + (f"; {broken} reliability test(s) FAILED" if broken else "")


def pytest_terminal_summary(terminalreporter):
    stats = terminalreporter.stats
    line = reliability_summary([r for r in stats.get("passed", []) if r.when == "call"],
                               [r for r in stats.get("failed", []) if r.when == "call"])
    if line:
        terminalreporter.write_sep("=", line)


@pytest.fixture
def fake():
    """A fault-injecting OpenAI-protocol server on 127.0.0.1 (stands in for the cloud)."""
    from fake_openai import FakeOpenAI
    with FakeOpenAI() as server:
        yield server
