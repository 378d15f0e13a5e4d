"""Background jobs for the UI: a long run (annotation, distillation) in a thread, with
progress, cancel and the error it ended with. Knows nothing of Streamlit, so the pages stay
thin and tests drive it directly."""
from __future__ import annotations

import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from .records import CandistError

FRESH_FOR = 600.0    # seconds a finished job's success line stays on its page


@dataclass
class Job:
    name: str
    cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int = 0
    stats: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    status: str = "running"      # running, done, cancelled, failed
    error: str | None = None
    result: Any = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    # Unique for the life of the process, unlike id(): a page that keys its one refresh
    # after a job on it would skip a later job's refresh when Python reuses the address.
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def progress(self, done: int, total: int, stats: dict | None = None) -> None:
        self.done, self.total = done, total
        if stats is not None:
            self.stats = stats

    def eta_seconds(self) -> float | None:
        if not self.done or not self.total:
            return None
        elapsed = time.time() - self.started
        return elapsed / self.done * (self.total - self.done)

    def outcome(self, now: float | None = None, *, fresh_for: float = FRESH_FOR) -> str | None:
        """The finished job in one line with how long ago it ended ("Distillation done in
        41 s, 3 min ago"), or None while it runs, and for a success older than
        ``fresh_for`` seconds (the page's run list has it by then; a failure stays)."""
        if self.running:
            return None
        ended = self.finished or self.started
        ago = max(0.0, (time.time() if now is None else now) - ended)
        if self.status != "failed" and ago > fresh_for:
            return None
        when = "just now" if ago < 60 else f"{ago / 60:.0f} min ago" if ago < 3600 \
            else f"{ago / 3600:.0f} h ago"
        if self.status == "failed":
            return f"{self.name} failed {when}: {self.error}"
        took = ended - self.started
        took = "under 1 s" if took < 0.5 else f"{took:.0f} s"
        return f"{self.name} {self.status} in {took}, {when}."


class JobRegistry:
    """At most one running job per key (e.g. ``"annotate:<project>"``)."""

    def __init__(self):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Job | None:
        return self._jobs.get(key)

    def start(self, key: str, name: str, work: Callable[[Job], Any]) -> Job:
        with self._lock:
            current = self._jobs.get(key)
            if current is not None and current.running:
                raise CandistError(f"{current.name} is still running; cancel it or wait.")
            job = Job(name)
            self._jobs[key] = job

        def run() -> None:
            try:
                job.result = work(job)
                job.status = "cancelled" if job.cancel.is_set() else "done"
            except CandistError as exc:
                job.status, job.error = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - shown to the user, logged in full
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            finally:
                job.finished = time.time()

        threading.Thread(target=run, name=f"candist-{key}", daemon=True).start()
        return job
