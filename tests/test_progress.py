"""Distillation estimates and progress: named stages and an ETA that only counts down."""
import time

import numpy as np
import pytest

from candist_core.progress import (DistillProgress, TimedRun, busy_factor, estimate_distillation,
                                   timed_runs)
from candist_core.records import Label, LabelSchema


def test_estimate_uses_this_machines_runs_else_says_it_is_a_guess():
    measured = estimate_distillation([TimedRun(300, 1, 240.0), TimedRun(100, 2, 170.0)],
                                     texts=600, epochs=2,
                                     device="cpu")
    assert measured.measured and measured.runs == 2
    # 0.8 and 0.85 s a text-epoch, the newer (first) counting twice the older
    assert measured.seconds == pytest.approx((2 * 0.8 + 0.85) / 3 * 600 * 2)
    guess = estimate_distillation([], texts=300, epochs=1, device="cpu")
    assert not guess.measured and "rough guess" in guess.describe()


def test_the_first_guess_follows_the_texts_length_and_the_device():
    def guess(**kw):
        return estimate_distillation([], epochs=4, **kw).seconds
    # The measured reference: 2,000 texts of ~55 tokens, 4 epochs, 428 s on 2 CPU cores.
    assert 380 < guess(texts=2000, mean_chars=220, device="cpu") < 480
    # 150 short demo texts: about a minute, not the 8 minutes of a flat per-text rate.
    assert guess(texts=150, mean_chars=50, device="cpu") < 90
    # Long texts cost no more than the 128-token cut; a GPU is far faster.
    assert guess(texts=1000, mean_chars=5000) == guess(texts=1000, mean_chars=512)
    assert guess(texts=2000, mean_chars=220, device="cuda") < 30


def test_stages_are_named_and_the_eta_never_grows_with_a_steady_step_rate():
    clock = [100.0]
    progress = DistillProgress(epochs=2, clock=lambda: clock[0])
    assert progress.stage.startswith("preparing")
    clock[0] += 60                       # a slow start (model load) must not inflate the ETA
    etas, stages = [], []
    for step in range(1, 11):
        clock[0] += 1
        progress.on_step(step, 10)
        stages.append(progress.stage)
        etas.append(progress.eta_seconds())
        if step % 5 == 0:
            clock[0] += 2
            progress.on_epoch({"epoch": step // 5})
    assert etas[0] is None
    assert all(a >= b for a, b in zip(etas[1:], etas[2:]))
    assert etas[1] < 15
    assert stages[0] == "training: epoch 1 of 2" and stages[5] == "training: epoch 2 of 2"
    assert stages[4].startswith("predicting every text after epoch 1")
    assert progress.stage == "writing the predictions and saving the model"


def test_an_extended_run_names_its_new_epochs_and_counts_them_in_the_eta():
    clock = [0.0]
    progress = DistillProgress(epochs=2, clock=lambda: clock[0])
    for step in range(1, 11):
        clock[0] += 1
        progress.on_step(step, 10)
        if step == 5:
            progress.on_epoch({"epoch": 1})
    before = progress.eta_seconds()
    progress.on_epoch({"epoch": 2, "changed": 0.031, "extended": 1})
    assert progress.stage == ("training: epoch 3 of 3 (extended: epoch 2 still changed 3% "
                              "of the student's labels from the epoch before)")
    # the step count grows with the stage, before the new epoch's first step
    assert (progress.done, progress.total) == (10, 15)
    assert progress.eta_seconds() > before + 3
    clock[0] += 1
    progress.on_step(11, 15)
    assert progress.stage.startswith("training: epoch 3 of 3 (extended: epoch 2 still")
    assert progress.eta_seconds() > before + 3          # four more steps and a prediction pass


def test_a_slow_step_under_way_counts_down_but_never_below_the_steps_after_it():
    now = [0.0]
    tracker = DistillProgress(epochs=1, clock=lambda: now[0])
    for step in range(1, 4):                       # 10 s a step
        now[0] += 10
        tracker.on_step(step, 10)
    etas = [tracker.eta_seconds()]
    for _ in range(10):                            # step 4 hangs for 50 s
        now[0] += 5
        etas.append(tracker.eta_seconds())
    assert all(b <= a for a, b in zip(etas, etas[1:]))     # never grows meanwhile
    assert min(etas) >= 6 * 10                             # 6 steps still to come after it


def test_the_first_guess_counts_other_work_on_the_cores():
    # Nothing else running: no slow-down; a benchmark keeping both of 2 cores busy while
    # the run wants both: twice as slow (a walk's 49 s guess took 111 s).
    assert busy_factor(0.0, cores=2, threads=2) == 1.0
    assert busy_factor(2.0, cores=2, threads=2) == pytest.approx(2.0)
    assert busy_factor(1.0, cores=16, threads=8) == 1.0     # spare cores absorb it
    quiet = estimate_distillation([], texts=150, epochs=4, mean_chars=50)
    busy = estimate_distillation([], texts=150, epochs=4, mean_chars=50, busy=2.0)
    assert busy.seconds == pytest.approx(2 * quiet.seconds)
    assert "2.0x slower" in busy.describe() and "slower" not in quiet.describe()
    # a timed run already ran under its machine's load: not scaled again
    timed = [TimedRun(150, 4, 69.0)]
    assert estimate_distillation(timed, texts=150, epochs=4, busy=2.0).seconds == \
        pytest.approx(69.0)


def test_the_first_guess_for_the_demo_is_near_what_its_run_takes():
    # Two walks: the demo's 150 texts of ~49 characters trained in 15-20 s; the guess
    # said 49 s (71 s counted busy).
    guess = estimate_distillation([], texts=150, epochs=4, mean_chars=48.7)
    assert 12 <= guess.seconds <= 25


def test_the_load_read_before_a_run_leaves_out_this_process_s_own_work():
    # The load average counted the app's own annotation just before: 71 s guessed, 15 s run.
    import threading
    import time as clock

    from candist_core.progress import _cpu_seconds_busy, other_load
    if _cpu_seconds_busy() is None:
        pytest.skip("no /proc/stat here: the 1-minute load average stands in")
    stop = threading.Event()

    def spin():                      # this process keeps one core busy
        while not stop.is_set():
            pass
    worker = threading.Thread(target=spin)
    worker.start()
    try:
        start, t0 = _cpu_seconds_busy(), clock.monotonic()
        other = other_load(0.5)
        whole = (_cpu_seconds_busy() - start) / (clock.monotonic() - t0)
    finally:
        stop.set()
        worker.join()
    assert whole - other >= 0.5      # the machine was busier than what is counted as other


def test_an_estimate_that_proved_low_does_not_pull_the_eta_to_zero():
    # The walk: estimate 49 s; the run took 111 s. Halfway through (10 of 20 steps, 58 s
    # in) the measured rate says 48 s are left, where the estimate, counted down, says 0.
    now = [0.0]
    tracker = DistillProgress(epochs=4, clock=lambda: now[0], estimate=49.0)
    now[0] = 8.0
    for step in range(1, 11):
        tracker.on_step(step, 20)
        if step % 5 == 0:
            now[0] += 2.0                       # the prediction pass after the epoch
            tracker.on_epoch({"epoch": step // 5})
        now[0] += 4.6
    measured = 10 * 4.6 + 2 * 2.0                # steps and prediction passes left
    eta = tracker.eta_seconds()
    assert now[0] > 49.0 and eta >= 0.8 * measured


def test_the_bar_moves_while_every_text_is_predicted_and_never_goes_back():
    now = [0.0]
    tracker = DistillProgress(epochs=2, clock=lambda: now[0], estimate=40.0)
    shown = [tracker.fraction()]
    for step in range(1, 6):                    # epoch 1: 5 steps of 2 s
        now[0] += 2.0
        tracker.on_step(step, 10)
        shown.append(tracker.fraction())
    during = []
    for _ in range(4):                          # then 8 s predicting: no step comes
        now[0] += 2.0
        during.append(tracker.fraction())
    assert during[-1] > during[0] > shown[-1] - 1e-9     # the bar moves meanwhile
    tracker.on_epoch({"epoch": 1})
    for step in range(6, 11):
        now[0] += 2.0
        tracker.on_step(step, 10)
        shown.append(tracker.fraction())
    every = shown[:6] + during + shown[6:]
    assert all(b >= a for a, b in zip(every, every[1:]))    # never back
    assert max(every) < 1.0           # the last prediction pass is still to come
    now[0] += 4.0
    tracker.on_epoch({"epoch": 2})
    assert tracker.fraction() == pytest.approx(1.0)


def test_before_the_first_step_the_eta_is_the_estimate_counting_down():
    now = [0.0]
    tracker = DistillProgress(epochs=2, clock=lambda: now[0], estimate=100.0)
    assert tracker.eta_seconds() == 100.0
    now[0] = 30.0
    assert tracker.eta_seconds() == 70.0
    assert DistillProgress(epochs=2).eta_seconds() is None


def test_slow_first_steps_do_not_throw_the_eta_far_from_the_estimate():
    now = [0.0]
    tracker = DistillProgress(epochs=1, clock=lambda: now[0], estimate=60.0)
    now[0] = 10.0                                   # preparing
    tracker.on_step(1, 20)                          # the first step, timed from here
    now[0] = 16.0
    tracker.on_step(2, 20)                          # 6 s: a slow, warming-up step
    measured_only = 18 * 6.0 + 6.0 / 3 * 20         # 18 steps and the prediction pass left
    eta = tracker.eta_seconds()
    assert 60.0 - 16.0 < eta < measured_only        # between the two,
    assert eta - (60.0 - 16.0) < measured_only - eta   # nearer the estimate
    for step in range(3, 15):                       # then 1 s a step
        now[0] += 1
        tracker.on_step(step, 20)
    assert tracker.eta_seconds() < eta              # the measured rate takes over


def test_the_latest_run_counts_most_and_every_run_counts():
    # The walk: two runs of about 69 s, then one of 43 s (the newest comes first).
    before = estimate_distillation([TimedRun(150, 4, 69.0), TimedRun(150, 4, 69.0)],
                                   texts=150, epochs=4)
    after = estimate_distillation([TimedRun(150, 4, 43.0), TimedRun(150, 4, 69.0),
                                   TimedRun(150, 4, 69.0)],
                                  texts=150, epochs=4)
    assert before.seconds == pytest.approx(69.0)
    assert after.runs == 3
    # weights 1, 1/2, 1/4: nearer the latest run than the older ones, yet not only it
    assert after.seconds == pytest.approx((43 + 69 / 2 + 69 / 4) / 1.75)
    assert 43 < after.seconds < (43 + 69) / 2


def test_the_start_is_counted_once_and_the_epochs_scale_with_texts_and_epochs():
    # 20 s loading and saving, then 40 s for 100 texts x 2 epochs: 0.2 s a text-epoch.
    timed = [TimedRun(texts=100, epochs=2, seconds=60.0, epoch_seconds=40.0)]
    assert estimate_distillation(timed, texts=100, epochs=2).seconds == pytest.approx(60.0)
    assert estimate_distillation(timed, texts=300, epochs=4).seconds == pytest.approx(
        20 + 0.2 * 300 * 4)


def test_the_estimate_reads_as_one_sentence_without_brackets_in_brackets():
    one = estimate_distillation([TimedRun(150, 4, 69.0)], texts=150, epochs=4).describe()
    two = estimate_distillation([TimedRun(150, 4, 69.0), TimedRun(150, 4, 60.0)], texts=150,
                                epochs=4).describe()
    guess = estimate_distillation([], texts=150, epochs=4).describe()
    assert one == "about 69 s, measured on this machine by the one run timed so far"
    assert two.endswith("measured on this machine by its 2 latest runs, the newest counting "
                        "most")
    assert guess.startswith("about ") and "rough guess" in guess
    assert all("(" not in text for text in (one, two, guess))


def finish_run(store, project_id, *, pause: float, epoch_seconds: float | None = None,
               epochs: list[dict] | None = None, best: int = 1) -> int:
    """A full distillation recorded as the trainer records one: its epochs (by default one
    taking ``epoch_seconds``), predictions, then done ``pause`` seconds after it started."""
    run = store.create_student_run(project_id, teacher_run_id=None, method="candist",
                                   config={"epochs": len(epochs or [1])})
    if epochs is None:
        epochs = [{"epoch": 1, "loss": 1.0, "selection_score": 0.5}]
        if epoch_seconds is not None:
            epochs[0]["seconds"] = epoch_seconds
    for metrics in epochs:
        store.record_student_epoch(run, metrics)
    ids = [s.id for s in store.samples(project_id)]
    labels = store.label_schema(project_id).names
    zeros = np.zeros(len(ids))
    store.write_predictions(run, ids, np.full((len(ids), len(labels)), 0.5), labels,
                            entropy=zeros, out_of_candidate=zeros, high_confidence=zeros,
                            small_loss=zeros)
    time.sleep(pause)
    store.finish_student_run(run, status="done", best_epoch=best)
    return run


def test_a_run_counts_as_soon_as_it_is_finished_and_an_update_never(store):
    project = store.create_project("p", LabelSchema("", (Label("a", ""), Label("b", ""))))
    store.insert_samples(project.id, [(f"t{i}", f"text {i}", None) for i in range(4)])
    assert timed_runs(store) == []
    finish_run(store, project.id, pause=0.3, epoch_seconds=0.2)
    [first] = timed_runs(store)
    assert (first.texts, first.epochs, first.epoch_seconds) == (4, 1, 0.2)
    assert 0.3 <= first.seconds < 5 and first.start_seconds == pytest.approx(
        first.seconds - 0.2)
    slow = estimate_distillation(timed_runs(store), texts=4, epochs=1)
    finish_run(store, project.id, pause=0.05, epoch_seconds=None)   # an older format
    newest, older = timed_runs(store)
    assert older == first and newest.epoch_seconds is None
    fast = estimate_distillation(timed_runs(store), texts=4, epochs=1)
    assert fast.runs == 2 and fast.seconds < slow.seconds
    update = store.create_student_run(project.id, teacher_run_id=None, method="candist",
                                      config={"update_of": 1})
    store.record_student_epoch(update, {"epoch": 1, "seconds": 5.0})
    store.finish_student_run(update, status="done", best_epoch=1)
    assert len(timed_runs(store)) == 2
