"""Where the app finds its database: ``CANDIST_DB`` or ``data/candist.db``."""
from __future__ import annotations

import os
from pathlib import Path

from . import demo_project
from .store import Store

DEFAULT_DB = Path(__file__).resolve().parent.parent / "data" / "candist.db"


def db_path() -> Path:
    return Path(os.environ.get("CANDIST_DB") or DEFAULT_DB)


def open_store(path: str | Path | None = None) -> Store:
    """Open the app's store, loading the demo project into a brand-new database."""
    path = Path(path or db_path())
    fresh = not path.exists()
    store = Store(path)
    if fresh:
        demo_project.load_demo(store, if_missing=True)
    return store
