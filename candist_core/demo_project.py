"""The bundled demo project (150 short support messages, 5 intents, written for us)."""
from __future__ import annotations

from pathlib import Path

from .importing import ImportOptions, import_csv
from .records import ProjectError
from .schema import load_schema

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
DEMO_PROJECT = "demo"


def load_demo(store, *, if_missing: bool = True) -> bool:
    """Create the demo project and import its messages; False when it already exists."""
    if any(p.name == DEMO_PROJECT for p in store.list_projects()):
        if if_missing:
            return False
        raise ProjectError(f"Project {DEMO_PROJECT!r} already exists in {store.path}.")
    project = store.create_project(DEMO_PROJECT, load_schema(DEMO_DIR / "labels.json"))
    import_csv(store, project.id, DEMO_DIR / "messages.csv",
               options=ImportOptions(text_col="text", gold_col="label", id_col="id"))
    return True
