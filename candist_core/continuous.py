"""The continuous student (issue 13): after every N new human labels (a project setting,
default 50; 0: only on demand) the student is updated in the background, so the review
queue follows the reviewer without anyone starting a distillation.

An update (:func:`distill.update_student`) warm-starts from the latest student's head and
retrains it on the current targets with every human label fixed, in seconds; it writes its
predictions in one transaction and is marked done only after, so the Review page keeps
ranking from the previous student until the new one is whole (its queue re-ranks when the
latest finished run changes). A full distillation stays on the Distill page.

"New" human labels are the current ones (not undone since, the newest of their text) made
after the latest finished student run was created: both kinds of run read their targets
just before they create their row, so a label made while a run trains counts as new for
the next one. Skips do not count: they teach the student nothing.

Pure: :class:`Freshness`, :func:`due`, :func:`describe`, :func:`run_kind`. Orchestration:
:func:`read_freshness` gathers the state from the store and the job registry;
:func:`start_update` and :func:`update_if_due` start the update from a :class:`JobRegistry`
thread, at most one per project and database; its error stays on the job, never raised.

The thread runs the update in a child process (``python -m candist_core.continuous``), not
in itself, so that the update can cap torch at half the cores without changing the
server's (a full distillation may run there) and shares no GIL with the page renders.
torch's default thread count is the costly part on a busy machine: at 2,000 texts on 2
busy cores the update took 14-22 s with it and about 2 s with one thread. Starting the
child costs 3-4 s of imports, so the queue re-ranks 4-7 s after the Nth decision instead
of about 2 s in-process (measured with AppTest; renders during the update 60-90 ms either
way, against 35-60 ms before). The child dies with the server (``PR_SET_PDEATHSIG`` on
Linux, else a watchdog), so a killed server leaves a run row marked 'running' by a dead
process, which the next run marks failed; its predictions were never written.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# No torch here: the Review page imports this module on its first render (an import of
# torch and transformers is 2-4 s); the update imports it where it runs.

from .audit import wilson
from .jobs import Job, JobRegistry
from .records import CandistError, StudentError
from .store import Store
from .workers import worker_alive

AUTO_TRIGGER = "app: after {every} decisions"
# When every ambiguous text is decided before N labels came in (a 20-text queue never
# reaches 50: a walk), the update starts then, or the reviewer's work would wait unlearned.
QUEUE_DONE_TRIGGER = "app: every ambiguous text decided"
ON_DEMAND_TRIGGER = "app: on demand"

HELP = ("The student is the small model that ranks the Review page's queue and labels "
        "every text nobody reviews. After every N of the team's labels (N is the Distill "
        "page's setting \"Update the student every N human labels\", 50 by default) it is "
        "updated in the background (also as soon as every ambiguous text is decided, if that "
        "comes first): it starts from the latest student and relearns from the "
        "teacher's candidate sets with every human label fixed, which takes a few seconds, "
        "then the queue is re-ranked by the new student. With the offline "
        "teacher, the update first re-teaches the teacher with the human labels (texts "
        "close to a labelled text get its label among their candidates: a new teacher "
        "run), which can be turned off on the Distill page. You can keep reviewing "
        "meanwhile. Skips do not count, they teach it nothing. A full distillation "
        "(Distill page) retrains the whole model and takes minutes.")
TEACH_HELP = ("Before each update, the offline teacher ranks every text again with votes "
              "from the human-labelled texts: a text close to texts people labelled X gets X "
              "among its candidates, weighted by how well such votes predict the labelled "
              "texts themselves (so a few inconsistent labels change little). It adds well "
              "under a second to the update (the texts' embeddings are kept from the "
              "annotation) and makes a new teacher run; the previous automatic one is "
              "replaced, runs you made are kept. Measured on three public datasets with a "
              "simulated reviewer, at 200 decisions: +7.7 points of exported labels right on "
              "TREC (question types), +1.5 on Banking77 (banking requests), -0.8 on Medical "
              "Abstracts (whose classes the embeddings tell apart least). It does nothing "
              "for an LLM teacher (re-asking costs money: use the Annotate page's button).")


@dataclass(frozen=True)
class Freshness:
    """How far the project's student is behind the human labels.

    ``every``: the setting (0: automatic updates off); ``student_run``: the latest finished
    student run (whose predictions the app shows), None before the first; ``new``: current
    human labels made since it; ``updating``: the new labels a running update learns from
    (None: no update running); ``distilling``: a full distillation is running;
    ``failed``/``failed_at``: the error of the last automatic update of this student and
    ``new`` when it started (the next try waits for ``every`` more labels)."""

    every: int
    student_run: int | None = None
    new: int = 0
    updating: int | None = None
    distilling: bool = False
    failed: str | None = None
    failed_at: int | None = None
    newer_teacher: int | None = None   # a teacher run newer than the student's (its number)
    taught_teacher: int | None = None  # the teacher run the latest update re-taught

    @property
    def threshold(self) -> int:
        """``new`` at which the next automatic update starts."""
        return self.every + (self.failed_at or 0)


def due(fresh: Freshness, *, ambiguous_left: int | None = None) -> bool:
    """Whether an automatic update should start now: updates are on, there is a student to
    update, nothing is training, and ``every`` new labels have come in (``every`` more
    than when the last update of this student failed, if it did), or some have and
    ``ambiguous_left`` (the undecided texts with more than one candidate, when the caller
    knows it) is 0: the queue's hard part is done, so the student learns it now. A failed
    update is retried only after ``every`` more, never on each later label."""
    if fresh.every <= 0 or fresh.student_run is None:
        return False
    if fresh.updating is not None or fresh.distilling:
        return False
    if ambiguous_left == 0 and fresh.new > 0 and not fresh.failed:
        return True
    return fresh.new >= fresh.threshold


def _labels(n: int) -> str:
    return f"{n} new human label" + ("" if n == 1 else "s")


def describe(fresh: Freshness, *, can_distill: bool = True,
             ambiguous_left: int | None = None) -> str:
    """The Review page's one line on the student, e.g. "12 new human labels since the
    student last trained · next update after 38 more". It counts labels, not decisions:
    skips teach the student nothing, and the count beside it ("N decided … labels and
    skips") includes them. ``can_distill``: whether the reader may open the Distill page (a team's
    reviewer may not: the owner distills)."""
    if fresh.student_run is None:
        if fresh.distilling:
            return "No student yet: a full distillation is running on the Distill page."
        if not can_distill:
            return "No student yet: a project owner distills one on the Distill page."
        return "No student yet: distill one on the Distill page."
    if fresh.updating is not None:
        return f"Updating the student with {fresh.updating} new " \
               f"{'human label' if fresh.updating == 1 else 'human labels'}…"
    if fresh.new == 0:
        line = "Student up to date: no new human label since it last trained"
    else:
        line = f"{_labels(fresh.new)} since the student last trained"
    if fresh.taught_teacher is not None:
        line += (f" · its last update re-taught the teacher with the human labels (teacher "
                 f"run #{fresh.taught_teacher}; the Annotate page shows what it changed)")
    if fresh.newer_teacher is not None:
        line += (f" · it learned from an older teacher run than the current one "
                 f"(#{fresh.newer_teacher}): the next update uses the new candidates")
    if fresh.distilling:
        return line + " · a full distillation is running"
    if fresh.every <= 0:
        return line + " · automatic updates are off (Distill page)"
    if fresh.failed:
        line += f" · the last update failed: {fresh.failed}"
    left = fresh.threshold - fresh.new
    if left > 0 and ambiguous_left is not None and 0 < ambiguous_left < left \
            and not fresh.failed:
        return line + (f" · next update after {left} more, or once the {ambiguous_left} "
                       f"ambiguous {'text' if ambiguous_left == 1 else 'texts'} left "
                       f"{'is' if ambiguous_left == 1 else 'are'} decided")
    return line + (f" · next update after {left} more" if left > 0 else " · update due")


def trigger_text(trigger: str | None) -> str:
    """A run's trigger as the Distill page says it."""
    if not trigger:
        return ""
    if trigger == "cli":
        return "from the command line"
    return trigger.removeprefix("app: ")


def extension_text(config: dict, epochs: list[dict]) -> str:
    """Why a full run trained more epochs than planned (StudentConfig.extra_epochs), in a
    sentence for the Distill page; "" for a run that kept to its plan."""
    marks = [e for e in epochs if e.get("extended")]
    if not marks:
        return ""
    first = marks[0]
    text = (f"It trained {len(epochs)} epochs, not the {config.get('epochs', first['epoch'])} "
            f"planned: epoch {first['epoch']} still changed {first.get('changed', 0):.0%} of "
            f"the student's labels from the epoch before, so the run went on")
    if len(marks) > 1:
        text += (f", and again after epoch {marks[-1]['epoch']}, whose extension had found a "
                 f"better epoch")
    return text + " (Extra epochs, under More settings)."


def planned_epochs(config: dict, epochs: list[dict]) -> str:
    """The runs table's epochs: "6 (4 planned)" for a run that went on, else "4"."""
    planned = config.get("epochs")
    if planned and len(epochs) > planned:
        return f"{len(epochs)} ({planned} planned)"
    return str(len(epochs))


# What the kept epoch's selection score was measured on (student.split_rows), as the runs
# table names it; the column's help says what each share counts.
CHECKED_ON = {"candidates": "held-back texts", "human": "human labels", "audit": "audit labels"}


def kept_check(epochs: list[dict], best_epoch: int | None) -> str:
    """The runs table's selection score of the kept epoch, with its 95 % Wilson interval
    and what it was measured on, e.g. "91% (86-95%) · 150 held-back texts" (held-back
    texts: the share whose student label is in the teacher's set; human or audit labels:
    the share it agrees with). "" for an update (it keeps its one epoch) or a run with
    nothing held back: a score on no texts is no check."""
    best = next((e for e in epochs if e.get("epoch") == best_epoch), None)
    n = int((best or {}).get("selection_n") or 0)
    on = CHECKED_ON.get((best or {}).get("validation"))
    if not n or on is None or best.get("selection_score") is None:
        return ""
    est = wilson(round(best["selection_score"] * n), n)
    return f"{est.value:.0%} ({100 * est.low:.0f}-{est.high:.0%}) · {n} {on}"


def run_kind(config: dict) -> str:
    """What a student run was, from its config: "full distillation", or e.g. "update of
    run #3 · 57 human labels · after 50 decisions". Runs are named by their database id,
    as the command line and the model folders name them, on every page."""
    if "update_of" not in config:
        return "full distillation"
    parts = [f"update of student run #{config['update_of']}"]
    if config.get("human_labels") is not None:
        parts.append(f"{config['human_labels']} human labels")
    if (config.get("taught_teacher") or {}).get("teacher_run"):
        parts.append(f"re-taught teacher run #{config['taught_teacher']['teacher_run']}")
    if trigger_text(config.get("trigger")):
        parts.append(trigger_text(config.get("trigger")))
    return " · ".join(parts)


def calibration_text(epochs: list[dict]) -> str:
    """How an update's shown confidence was calibrated ("" for a full run or an update made
    before calibration existed): see :func:`learning.calibrate`."""
    how = (epochs[0] if epochs else {}).get("calibration")
    if not how:
        return ""
    fitted = how.get("fitted") is not None
    source = (f"checked against {how['humans']} of your labels, each predicted by an update "
              f"that had not seen it" if fitted else
              "kept at the full distillation's level")
    return (f"Its percentages are calibrated ({source}): retraining on your labels makes a "
            f"student surer faster than it makes it right. The calibration changes only the "
            f"percentages shown, not the student's labels or the order it gives the queue.")


# ----------------------------------------------------------------- orchestration
def update_key(store, project_id: int) -> str:
    """The job registry key of a project's update (one database may sit beside another in
    the same process: tests, a second ``CANDIST_DB``)."""
    return f"update:{store.path}:{project_id}"


def read_freshness(store, registry: JobRegistry, project_id: int) -> Freshness:
    """The project's :class:`Freshness`: the latest finished student, the labels since,
    and what is training now (in this process's registry, or a live process's run row)."""
    latest = store.latest_student_run(project_id)
    since = latest.created if latest else None
    job = registry.get(update_key(store, project_id))
    updating = None
    if job is not None and job.running and (latest is None or
                                            latest.id == job.stats.get("base", latest.id)):
        updating = job.stats.get("new", 0)   # (its run, once done, is the latest: over)
    full = registry.get(f"distill:{project_id}")     # views/distill.py's key
    distilling = full is not None and full.running
    for run in store.running_student_runs(project_id):
        if not worker_alive(run.worker):
            continue                                   # dead: marked failed by the next run
        if "update_of" not in run.config:
            distilling = True
        elif updating is None:                         # another process's update
            updating = store.new_human_labels(project_id, since=since, until=run.created)
    failed = failed_at = None
    if job is not None and job.status == "failed" and latest is not None \
            and job.stats.get("base") == latest.id:
        failed, failed_at = job.error, job.stats.get("new", 0)
    teacher = store.latest_teacher_run(project_id)
    newer = teacher.id if (latest is not None and teacher is not None
                           and latest.teacher_run_id != teacher.id) else None
    return Freshness(every=store.update_every(project_id),
                     student_run=latest.id if latest else None,
                     new=store.new_human_labels(project_id, since=since) if latest else 0,
                     updating=updating, distilling=distilling, failed=failed,
                     failed_at=failed_at, newer_teacher=newer,
                     taught_teacher=((latest.config.get("taught_teacher") or {})
                                     .get("teacher_run") if latest else None))


def start_update(store, registry: JobRegistry, project_id: int, *,
                 trigger: str = ON_DEMAND_TRIGGER) -> Job:
    """Start updating the project's student in a background thread; returns its job.
    StudentError when there is no student yet, CandistError when an update of the project
    is already running. The update's own errors end up on the job (``job.error``)."""
    latest = store.latest_student_run(project_id)
    if latest is None:
        raise StudentError("No student yet: run a full distillation first (an update "
                           "retrains the head of the latest student).")
    new = store.new_human_labels(project_id, since=latest.created)

    def work(job: Job) -> int:
        def stage(text: str) -> None:
            job.stats["stage"] = text

        if str(store.path) == ":memory:":
            from .distill import update_student   # torch: imported where it trains
            return update_student(store, project_id, trigger=trigger,
                                  teach=store.teach_on_update(project_id), on_stage=stage)
        stage("starting the update process (a few seconds of imports)")
        return update_in_child(store.path, project_id, trigger=trigger, on_stage=stage)

    job = registry.start(update_key(store, project_id), "Student update", work)
    job.stats.update(base=latest.id, new=new)
    return job


def update_if_due(store, registry: JobRegistry, project_id: int, *,
                  ambiguous_left: int | None = None) -> Job | None:
    """Start an automatic update when :func:`due`; returns its job, else None. Cheap (a few
    indexed reads), so the Review page calls it after every decision, with the ambiguous
    texts its queue has left. Never raises for an update that cannot start: another
    session starting one first is no error."""
    fresh = read_freshness(store, registry, project_id)
    if not due(fresh, ambiguous_left=ambiguous_left):
        return None
    trigger = AUTO_TRIGGER.format(every=fresh.every) if fresh.new >= fresh.threshold \
        else QUEUE_DONE_TRIGGER
    try:
        return start_update(store, registry, project_id, trigger=trigger)
    except CandistError:
        return None


def latest_full_run(store, project_id: int):
    """The newest finished full distillation (not an update): its curves, its best epoch
    and its model folder (updates change only the head and save no folder)."""
    return next((run for run in store.student_runs(project_id)
                 if run.status == "done" and "update_of" not in run.config), None)



# ----------------------------------------------------------------- the child process
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def update_in_child(db: str | Path, project_id: int, *, trigger: str,
                    on_stage=None) -> int:
    """:func:`distill.update_student` in a child process that dies with this one; returns
    the run id. ``on_stage(text)``: each step as the child starts it. StudentError with the
    child's message when it refuses (no student, texts without embeddings, ...),
    CandistError when it stops otherwise."""
    with tempfile.TemporaryFile("w+") as stdout:    # (a pipe could fill and block it)
        proc = subprocess.Popen(
            [sys.executable, "-m", "candist_core.continuous", str(Path(db).resolve()),
             str(project_id), trigger, str(os.getpid())],
            cwd=PACKAGE_ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in proc.stderr:                 # until the child closes it (it ends)
            if line.startswith(STAGE) and on_stage is not None:
                on_stage(line[len(STAGE):].strip())
            elif line.strip():
                lines.append(line.rstrip())
        proc.wait()
        stdout.seek(0)
        out = stdout.read()
    said = "\n".join(lines).rpartition("error: ")
    if proc.returncode == 2 and said[1]:
        raise StudentError(said[2].strip())
    if proc.returncode != 0:
        raise CandistError(f"The update process stopped (exit code {proc.returncode})"
                           + (f": {lines[-1]}" if lines else "."))
    return int(out.split()[-1])


STAGE = "stage: "


def _die_with(parent: int) -> None:
    """End this process when ``parent`` ends: the kernel's parent-death signal on Linux,
    else a thread that watches the parent id."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    else:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.2)
            os._exit(1)
        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:          # it ended before the signal was armed
        os._exit(1)


def _child(argv: list[str]) -> int:
    db, project_id, trigger, parent = argv
    _die_with(int(parent))
    # Half the cores at most: the server keeps the rest for the pages. torch's default (all
    # of them) is also pathological on a busy machine: measured on 2 busy cores at 2,000
    # texts, the head update took 11.5 s with 2 threads and 0.4 s with 1.
    import torch
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    try:
        with Store(db) as store:
            from .distill import update_student
            print(update_student(store, int(project_id), trigger=trigger,
                                 teach=store.teach_on_update(int(project_id)),
                                 on_stage=lambda text: print(STAGE + text, file=sys.stderr,
                                                             flush=True)), flush=True)
    except CandistError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
