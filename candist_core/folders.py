"""Folders written whole or not at all: filled under a temporary name, then renamed into
place, so a crash never leaves half a folder that looks whole (model folders, student
states)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable


def write_folder(path: Path, fill: Callable[[Path], None]) -> Path:
    """Call ``fill(tmp)`` on an empty sibling folder, then replace ``path`` with it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        fill(tmp)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
