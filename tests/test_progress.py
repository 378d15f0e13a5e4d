"""Distillation estimates and progress: named stages and an ETA that only counts down."""
from candist_core.progress import DistillProgress, estimate_distillation


def test_estimate_uses_this_machines_runs_else_says_it_is_a_guess():
    measured = estimate_distillation([(300, 1, 240.0), (100, 2, 170.0)], texts=600, epochs=2,
                                     device="cpu")
    assert measured.measured and measured.runs == 2
    assert measured.seconds == 0.85 * 600 * 2      # the median of 0.8 and 0.85 s/text/epoch
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
