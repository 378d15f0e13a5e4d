"""A distillation run of a project: gather targets from the store, train, record.

The trainer (:mod:`student`) knows nothing of SQLite; this module turns the latest
teacher run and the human decisions into :class:`TrainingData`, records every epoch as it
ends, writes all predictions in one transaction at the end (so an interrupted run is never
half-written) and saves the checkpoint under ``<database folder>/models/``.
"""
from __future__ import annotations

import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .audit import with_audit_selection
from .human_teacher import UPDATE_TRIGGER, teach_for_update
from .learning import (Head, UpdateConfig, calibrate, label_quality, out_of_sample_probs,
                       update_head)
from .metrics import entropy, student_run_metrics
from .model_dir import ModelCard, save_model_dir, save_with_head
from .records import StudentError, TeacherError, TeacherRun
from .schema import label_texts
from .student import Distiller, StudentConfig, TrainingData, review_flags, set_targets
from .student_state import load_embeddings, load_head, save_state, state_path
from .workers import worker_alive, worker_id


def training_data(store, project_id: int, *, method: str, teacher_run_id: int | None = None
                  ) -> tuple[TrainingData, TeacherRun | None]:
    """Candidate masks from the teacher run (its single label for ``sa``), human labels
    as fixed targets (skips keep the teacher's set), gold labels for reporting only."""
    schema = store.label_schema(project_id)
    names = schema.names
    index = {n: i for i, n in enumerate(names)}
    run = (store.teacher_run(teacher_run_id) if teacher_run_id
           else store.latest_teacher_run(project_id))
    annotations = {}
    if run is not None:
        annotations = {r.sample_id: r for r in store.annotations(run.id) if r.candidates}
    decisions = store.current_decisions(project_id)
    human = {sid: d.label for sid, d in decisions.items()
             if d.action == "label" and d.label in index}
    if not annotations and not human:
        raise StudentError("No teacher annotations and no human labels yet: run 'annotate' "
                           "first, or review some samples.")
    samples = store.samples(project_id)
    n, c = len(samples), len(names)
    cand = torch.zeros((n, c), dtype=torch.bool)
    human_idx = torch.full((n,), -1, dtype=torch.long)
    gold = torch.full((n,), -1, dtype=torch.long)
    teacher = torch.full((n,), -1, dtype=torch.long)
    for i, sample in enumerate(samples):
        row = annotations.get(sample.id)
        if row is not None:
            labels = [row.label] if method == "sa" else row.candidates
            for label in labels:
                if label in index:
                    cand[i, index[label]] = True
            if row.label in index:
                teacher[i] = index[row.label]
        if sample.id in human:
            human_idx[i] = index[human[sample.id]]
        if sample.gold in index:
            gold[i] = index[sample.gold]
    data = TrainingData([s.id for s in samples], [s.text for s in samples], names, cand,
                        human_idx, gold, label_texts=label_texts(schema), teacher=teacher)
    return data, run


INTERRUPTED = "interrupted: the process stopped before the run finished; start it again"


def fail_interrupted_runs(store, project_id: int) -> int:
    """Mark failed the runs left 'running' by a process that no longer exists (their
    predictions were never written: that happens in one transaction at the end)."""
    dead = [run for run in store.running_student_runs(project_id)
            if not worker_alive(run.worker)]
    for run in dead:
        store.finish_student_run(run.id, status="failed", error=INTERRUPTED)
    return len(dead)


def checkpoint_dir(store, project_name: str, run_id: int) -> Path:
    base = store.path.parent if str(store.path) != ":memory:" else Path("data")
    return base / "models" / project_name / f"run-{run_id}"


def distill_project(store, project_id: int, config: StudentConfig, *,
                    on_epoch=None, on_step=None, cancel: threading.Event | None = None,
                    save_checkpoint: bool = True, model=None, tokenizer=None) -> int:
    """Train a student on the project's latest teacher run; returns the student run id.
    ``model``/``tokenizer`` replace the configured model (tests pass a tiny one)."""
    fail_interrupted_runs(store, project_id)
    # With >= 20 audited texts, half of them select the epoch (unbiased) and are held out.
    config = with_audit_selection(store, project_id, config)
    data, teacher_run = training_data(store, project_id, method=config.method)
    run_id = store.create_student_run(project_id,
                                      teacher_run_id=teacher_run.id if teacher_run else None,
                                      method=config.method, config=_jsonable(config),
                                      worker=worker_id())

    def record_epoch(metrics: dict) -> None:
        store.record_student_epoch(run_id, metrics)
        if on_epoch:
            on_epoch(metrics)

    trainer = Distiller(config, model=model, tokenizer=tokenizer, on_epoch=record_epoch,
                        on_step=on_step, cancel=cancel)
    try:
        result = trainer.fit(data)
        store.write_predictions(run_id, data.sample_ids, result.probs, data.labels,
                                entropy=entropy(result.probs),
                                out_of_candidate=result.flags["out_of_candidate"],
                                high_confidence=result.flags["high_confidence"],
                                small_loss=result.flags["small_loss"],
                                **issue_signals(result.pooled, data, result.probs,
                                                seed=config.seed))
        path = None
        project = store.project_by_id(project_id)
        if save_checkpoint and result.state is not None:
            card = model_card(store, run_id, project.name, data, teacher_run, config, result)
            path = str(save_student(trainer, result, data.labels,
                                    checkpoint_dir(store, project.name, run_id), card=card))
        if result.state is not None and str(store.path) != ":memory:":
            save_state(state_path(checkpoint_dir(store, project.name, run_id)),
                       head=trained_head(trainer.model, result.state), labels=data.labels,
                       sample_ids=np.asarray(data.sample_ids), embeddings=result.pooled.numpy())
    except BaseException as exc:
        store.finish_student_run(run_id, status="failed", error=str(exc)[:500] or
                                 type(exc).__name__)
        raise
    store.finish_student_run(run_id, status="cancelled" if result.cancelled else "done",
                             best_epoch=result.best_epoch, checkpoint=path)
    return run_id


def trained_head(model, state: dict) -> Head:
    """The best epoch's head of a trained :class:`StudentModel` as plain arrays."""
    return Head(state["head.weight"].float().numpy().copy(),
                state["head.bias"].float().numpy().copy(), bool(model.cosine),
                float(model.scale))


def issue_signals(pooled: torch.Tensor | None, data: TrainingData, probs: np.ndarray, *,
                  seed: int = 0) -> dict:
    """From probabilities of logistic heads on the student's embeddings that never saw the
    text (see :mod:`learning`): ``label_issue``, cleanlab's label-quality score of each
    text's teacher label, and ``oos_confidence``, the probability of the student's own
    label. Empty without embeddings."""
    if pooled is None:
        return {}
    targets = set_targets(data.cand, data.fixed,
                          F.one_hot(data.human.clamp(min=0), len(data.labels)).float())
    oos = out_of_sample_probs(pooled, targets, seed=seed)
    student = np.asarray(probs).argmax(1)
    out = {"oos_confidence": oos[np.arange(len(oos)), student]}
    if data.teacher is not None and bool((data.teacher >= 0).any()):
        out["label_issue"] = label_quality(data.teacher.numpy(), oos)
    return out


def update_student(store, project_id: int, config: UpdateConfig = UpdateConfig(), *,
                   trigger: str = "on demand", teach: bool = False, on_stage=None) -> int:
    """A new student run whose head is the latest student's, retrained on the current
    targets with every human decision fixed (:func:`learning.update_head`) over the text
    embeddings of the latest full distillation; predictions are rewritten in one
    transaction and the run is marked done only after, so an update killed at any point
    leaves the previous predictions as the ones shown. Returns the run id.

    ``teach``: first teach the offline teacher with the human labels
    (:func:`human_teacher.teach_for_update`: a new teacher run, written whole, when the
    current run is the offline teacher's), so the head learns from the improved candidate
    sets. Measured in bench/RESULTS.md (Session 9): at 200 decisions +7.7 points of export
    accuracy on TREC, +1.5 on Banking77, -0.8 on Medical Abstracts. ``on_stage(text)`` is
    told each step as it starts (the app shows it)."""
    stage = on_stage or (lambda text: None)
    fail_interrupted_runs(store, project_id)
    latest = store.latest_student_run(project_id)
    if latest is None:
        raise StudentError("No student yet: run a full distillation first (an update "
                           "retrains the head of the latest student).")
    project = store.project_by_id(project_id)
    base = int(latest.config.get("embeddings_run", latest.id))
    head, labels = load_head(state_path(checkpoint_dir(store, project.name, latest.id)))
    ids, embeddings = load_embeddings(state_path(checkpoint_dir(store, project.name, base)))
    if labels != store.label_schema(project_id).names:   # (before re-teaching anything)
        raise StudentError("The project's labels changed since the last full distillation: "
                           "run a full distillation.")
    taught = None
    if teach:
        stage("re-teaching the offline teacher with the human labels")
        started = time.perf_counter()
        try:
            summary = teach_for_update(store, project_id)
        except TeacherError as exc:      # the update goes on with the current candidates
            taught = {"error": str(exc)[:300]}
        else:
            if summary is not None:
                taught = {"teacher_run": summary.run_id,
                          "seconds": round(time.perf_counter() - started, 2)}
    data, teacher_run = training_data(store, project_id, method="candist")
    rows = np.searchsorted(ids, data.sample_ids)
    rows = np.minimum(rows, len(ids) - 1)
    missing = int((ids[rows] != np.asarray(data.sample_ids)).sum())
    if missing:
        raise StudentError(f"{missing} texts were imported after the last full "
                           "distillation and have no embeddings: run a full distillation.")
    decisions = int(data.fixed.sum())
    run_id = store.create_student_run(
        project_id, teacher_run_id=teacher_run.id if teacher_run else None, method="candist",
        config={"update_of": latest.id, "embeddings_run": base, "trigger": trigger,
                "human_labels": decisions, **({"taught_teacher": taught} if taught else {}),
                **asdict(config)}, worker=worker_id())
    started = time.perf_counter()
    stage(f"retraining the student's classifier on {len(rows)} texts")
    try:
        pooled = torch.from_numpy(embeddings[rows])
        fixed_targets = F.one_hot(data.human.clamp(min=0), len(labels)).float()
        new_head, losses = update_head(head, pooled, data.cand, data.fixed, fixed_targets,
                                       config)
        stage("calibrating the student's confidence")
        full_head = head if base == latest.id else load_head(
            state_path(checkpoint_dir(store, project.name, base)))[0]
        # The queue's order and the refinery flags stay those of the trained output (the
        # orders were chosen by measuring it, bench/learning_curve.py); the temperature
        # changes only the confidence people are shown.
        trained = new_head.probs(pooled)
        new_head, calibration = calibrate(new_head, head, full_head, pooled, data.cand,
                                          data.fixed, fixed_targets, config)
        probs = new_head.probs(pooled)
        flags = review_flags(trained, data.cand, fixed=data.fixed, delta=config.delta,
                             tau=config.tau)
        issues = issue_signals(pooled, data, probs.numpy(), seed=config.seed)
        pred = probs.argmax(1)
        gold = data.gold >= 0
        store.record_student_epoch(run_id, {
            "epoch": 1, "update": True, "loss": float(np.mean(losses[-config.steps:])),
            "step_losses": [round(x, 4) for x in losses], "validation": "none",
            "selection_score": 1.0, "human_accuracy": None, "head": "update",
            "d_out": int(flags["out_of_candidate"].sum()), "d_sl": int(flags["small_loss"].sum()),
            "d_hc": int(flags["high_confidence"].sum()),
            "gold_accuracy": float((pred[gold] == data.gold[gold]).float().mean())
            if gold.any() else None, "calibration": asdict(calibration),
            "seconds": round(time.perf_counter() - started, 2)})
        stage("writing the new predictions")
        store.write_predictions(run_id, data.sample_ids, probs.numpy(), labels,
                                entropy=entropy(trained.numpy()),
                                out_of_candidate=flags["out_of_candidate"],
                                high_confidence=flags["high_confidence"],
                                small_loss=flags["small_loss"], **issues)
        save_state(state_path(checkpoint_dir(store, project.name, run_id)), head=new_head,
                   labels=labels)
    except BaseException as exc:
        store.finish_student_run(run_id, status="failed", error=str(exc)[:500] or
                                 type(exc).__name__)
        raise
    store.finish_student_run(run_id, status="done", best_epoch=1)
    # After the run is done (the queue re-ranks without waiting for ~90 MB of weights):
    # the update as a model folder of its own, so Predict and the download use what the
    # reviews taught.
    stage("saving the updated student as a model folder (the queue is already re-ranked)")
    saved = _save_update_folder(store, project.name, run_id, base, new_head.folded(),
                                f"retrained ({trigger}) on the candidate sets with "
                                f"{decisions} human labels fixed")
    prune_superseded_updates(store, project_id, keep=run_id, folders=saved)
    return run_id


def _save_update_folder(store, project_name: str, run_id: int, base: int, head: Head,
                        what: str) -> bool:
    """The full run's model folder with the update's head; False when it cannot be written
    (e.g. a full disk: the update itself stands, and the full run's folder is still
    there)."""
    full = store.student_run(base)
    if not (full.checkpoint and Path(full.checkpoint).is_dir()):
        return False
    note = (f"Run {run_id} of the database: the encoder of run {base}, its classifier head "
            f"{what}, in seconds (no encoder training).")
    try:
        path = save_with_head(full.checkpoint, checkpoint_dir(store, project_name, run_id),
                              head, note=note)
    except (OSError, StudentError):
        return False
    store.set_student_checkpoint(run_id, str(path))
    return True


def prune_superseded_updates(store, project_id: int, *, keep: int, folders: bool = True
                             ) -> None:
    """What the updates before ``keep`` (the newest) leave and nothing shows any more: their
    predictions (the app shows the newest run's; at 100,000 texts each update's are ~12 MB)
    and, when ``folders``, their model folders (~90 MB each); and the teacher runs that
    continuous updates re-taught (~23 MB each at 100,000 texts) other than the one ``keep``
    learned from and those a full distillation learned from. Each of these is derived in
    seconds from what is kept: the human decisions, the full runs, the heads (run-N.state)
    and the run rows with their records stay. Full distillations and runs made by hand are
    never touched."""
    runs = store.student_runs(project_id)
    kept = store.student_run(keep)
    in_use = {r.teacher_run_id for r in runs if "update_of" not in r.config}
    in_use.add(kept.teacher_run_id)
    for older in runs:
        if older.id >= keep or "update_of" not in older.config or older.status != "done":
            continue
        store.drop_predictions(older.id)
        if folders and older.checkpoint:
            shutil.rmtree(older.checkpoint, ignore_errors=True)
            store.set_student_checkpoint(older.id, None)
    for run in store.teacher_runs(project_id):
        if run.params.get("trigger") == UPDATE_TRIGGER and run.id not in in_use:
            store.delete_teacher_run(run.id)     # (also one a killed update left empty)


def save_student(trainer: Distiller, result, labels: list[str], path: Path, *,
                 card: ModelCard | None = None) -> Path:
    """The best epoch's weights as a transformers model directory (:mod:`model_dir`)."""
    model = trainer.model
    model.load_state_dict(result.state)
    return save_model_dir(model, trainer.tokenizer, labels, path,
                          max_tokens=result.max_length, card=card)


def model_card(store, run_id: int, project: str, data: TrainingData,
               teacher_run: TeacherRun | None, config: StudentConfig, result) -> ModelCard:
    """The card of a finished run: its teacher, settings and the accuracy figures the app
    has, each saying what it was measured on."""
    metrics = student_run_metrics(store, store.student_run(run_id))
    gold = int((data.gold >= 0).sum())
    human = int(data.fixed.sum())
    lines = []
    if metrics["accuracy"] is not None:
        lines.append(f"{metrics['accuracy']:.1%} agreement with the gold labels of the "
                     f"{gold} project texts that have one. The student trained on these "
                     f"texts (with the teacher's labels, not the gold ones), so this is "
                     f"not a held-out score.")
    if metrics["human_accuracy"] is not None:
        lines.append(f"{metrics['human_accuracy']:.1%} agreement with {human} human "
                     f"decisions; they were fixed training targets, so this mostly shows "
                     f"that they were learned.")
    teacher = "no teacher run (human labels only)"
    if teacher_run is not None:
        teacher = (f"{teacher_run.teacher} ({teacher_run.model}), strategy "
                   f"{teacher_run.strategy}, teacher run #{teacher_run.id}")
    settings = {k: v for k, v in _jsonable(config).items()   # not per-sample id lists
                if not (isinstance(v, (list, tuple)) and len(v) > 8)}
    return ModelCard(project=project, labels=list(data.labels), method=config.method,
                     teacher=teacher, settings=settings, human_labels=human,
                     best_epoch=result.best_epoch, epochs_run=len(result.history),
                     accuracy=lines, run_id=run_id)


def _jsonable(config: StudentConfig) -> dict:
    d = config.to_dict()
    d["components"] = dict(d["components"])
    return d
