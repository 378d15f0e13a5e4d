"""A background job's last line on its page: what happened and how long ago."""
from candist_core.jobs import FRESH_FOR, Job


def test_a_running_job_has_no_outcome_yet():
    assert Job("Distillation").outcome() is None


def test_a_finished_job_says_how_long_it_took_and_how_long_ago():
    job = Job("Distillation", status="done", started=1000.0, finished=1041.0)
    assert job.outcome(now=1050.0) == "Distillation done in 41 s, just now."
    assert job.outcome(now=1041.0 + 180) == "Distillation done in 41 s, 3 min ago."


def test_a_job_done_within_a_second_does_not_claim_zero_seconds():
    job = Job("Annotation", status="done", started=1000.0, finished=1000.3)
    assert job.outcome(now=1001.0) == "Annotation done in under 1 s, just now."


def test_an_old_success_leaves_the_page_but_a_failure_stays():
    done = Job("Update", status="done", started=0.0, finished=10.0)
    assert done.outcome(now=10.0 + FRESH_FOR + 1) is None
    failed = Job("Update", status="failed", error="no embeddings", started=0.0, finished=10.0)
    assert failed.outcome(now=10.0 + 2 * 3600) == "Update failed 2 h ago: no embeddings"
