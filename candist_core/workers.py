"""Which process runs a long job, and whether it is still alive.

A student run records the process that trains it (``host:pid``); when the app or the CLI
finds a run still marked 'running' whose process is gone (killed with the server, say),
it marks it failed instead of showing it as running forever.
"""
from __future__ import annotations

import os
import socket


def worker_id() -> str:
    """This process, as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_alive(worker: str | None) -> bool:
    """False only when ``worker`` is a process of this machine that no longer exists; a run
    of another machine is not ours to judge."""
    if not worker or ":" not in worker:
        return False
    host, pid = worker.rsplit(":", 1)
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return not _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but was never reaped: an update process that died with
    the server, in a container whose PID 1 does not reap orphans (Linux ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False
