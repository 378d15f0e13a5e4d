"""Network faults from a loopback server speaking the OpenAI protocol (tests/fake_openai.py):
each kind is retried with backoff where a retry can help, else recorded as an error row with
its kind; the batch goes on, the run summary counts every kind, and nothing is lost or
bought twice. Fatal answers (bad key, unknown model) stop the run with a clear message."""
import pytest

from animals import KEY, animals_project, run
from candist_core.metrics import project_metrics
from candist_core.records import TeacherError
from reliability.pipeline import files_containing

OK = {"content": '{"labels": ["cat"]}'}   # the first reply confirms the structured format
RETRIED = [
    ("rate_limit", "429 without Retry-After", {"status": 429}),
    ("server_error", "500", {"status": 500}),
    ("server_error", "502", {"status": 502}),
    ("server_error", "503", {"status": 503}),
    ("connection", "connection reset", "reset"),
    ("timeout", "reply that never ends", "hang"),
    ("malformed_response", "malformed JSON", "malformed"),
]
IDS = [name for _, name, _ in RETRIED]


@pytest.fixture
def project(store):
    return animals_project(store)


@pytest.mark.parametrize("kind, name, fault", RETRIED, ids=IDS)
def test_a_fault_that_persists_is_retried_then_recorded_and_the_batch_goes_on(
        store, project, fake, kind, name, fault, tally):
    fake.script.extend([OK, fault, fault, fault])
    summary = run(store, project, fake)
    assert summary.status == "incomplete"
    assert (summary.annotated, summary.failed) == (7, 1)
    assert dict(summary.errors) == {kind: 1}
    assert len(fake.chat_requests()) == summary.requests == 8 + 2  # the failing one: 3 tries
    errors = store.annotations(summary.run_id, errors_only=True)
    assert [e.error_kind for e in errors] == [kind]
    tally("fault", name)


@pytest.mark.parametrize("kind, name, fault", RETRIED, ids=IDS)
def test_a_transient_fault_is_retried_and_the_sample_annotated(store, project, fake, kind,
                                                               name, fault):
    fake.script.extend([OK, fault])
    summary = run(store, project, fake)
    assert (summary.status, summary.annotated, summary.requests) == ("done", 8, 9)


def test_retry_after_is_honoured(store, project, fake, tally):
    fake.script.extend([OK, {"status": 429, "headers": {"Retry-After": "1"}}])
    summary = run(store, project, fake)
    assert summary.annotated == 8
    assert fake.times[2] - fake.times[1] >= 0.95
    tally("fault", "429 with Retry-After")


def test_backoff_grows_between_attempts(store, project, fake):
    # The openai client's schedule: 0.5 s, then 1 s, each less up to 25 % jitter.
    fake.script.extend([OK, {"status": 503}, {"status": 503}])
    run(store, project, fake)
    gaps = [fake.times[2] - fake.times[1], fake.times[3] - fake.times[2]]
    assert gaps[0] >= 0.375 and gaps[1] >= 0.75 and gaps[1] > gaps[0]


@pytest.mark.parametrize("content, kind, name", [
    ('{"labels": ["banana"]}', "no_valid_label", "JSON label outside the schema"),
    ("none of these fit", "no_valid_label", "free text naming no label"),
    ("", "unparseable", "empty reply"),
])
def test_replies_naming_no_valid_label_are_recorded_and_counted(store, project, fake,
                                                                 content, kind, name, tally):
    fake.script.extend([OK, {"content": content}])
    summary = run(store, project, fake)
    assert dict(summary.errors) == {kind: 1}
    error = store.annotations(summary.run_id, errors_only=True)[0]
    assert error.raw == content
    assert project_metrics(store, project.id)["teacher"]["invalid_rate"] == 1 / 8
    tally("fault", name)


def test_an_empty_choice_list_is_an_error_row(store, project, fake, tally):
    fake.script.extend([OK, "empty_choices"])
    summary = run(store, project, fake)
    assert dict(summary.errors) == {"empty_choices": 1}
    tally("fault", "empty choice list")


def test_one_batch_with_every_fault_counts_each_kind_and_a_rerun_loses_nothing(
        store, project, fake, tally):
    fake.script.extend([OK, {"status": 429}, {"status": 500}, "reset", "hang", "malformed",
                        {"content": '{"labels": ["banana"]}'}, "empty_choices"])
    first = run(store, project, fake, max_retries=0)
    assert (first.status, first.annotated, first.failed) == ("incomplete", 1, 7)
    assert dict(first.errors) == {"rate_limit": 1, "server_error": 1, "connection": 1,
                                  "timeout": 1, "malformed_response": 1,
                                  "no_valid_label": 1, "empty_choices": 1}
    asked = len(fake.chat_requests())
    second = run(store, project, fake, max_retries=0)
    assert (second.run_id, second.already_done, second.annotated, second.status) == \
        (first.run_id, 1, 7, "done")
    assert len(fake.chat_requests()) - asked == 7   # the stored reply was not bought again
    tally(lost_replies=8 - len(store.done_sample_ids(first.run_id)))


def test_errors_are_not_cached(store, project, fake):
    fake.script.extend([OK] + [{"status": 500}] * 3)
    first = run(store, project, fake)
    assert first.failed == 1
    second = run(store, project, fake)
    assert (second.run_id, second.already_done, second.requests, second.status) == \
        (first.run_id, 7, 1, "done")


def test_a_refused_key_stops_the_run_and_the_key_is_nowhere(store, project, fake, tmp_path,
                                                            tally):
    fake.script.append({"status": 401, "body": {"error": {
        "message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}})
    with pytest.raises(TeacherError) as err:
        run(store, project, fake)
    assert str(err.value) == ("The server refused the API key (401): check the key for this "
                              "server.")
    store.db.execute("PRAGMA wal_checkpoint(FULL)")
    assert files_containing(tmp_path, KEY) == []
    assert store.teacher_runs(project.id)[0].status == "failed"
    tally("fault", "401 refused key")


def test_an_unknown_model_is_named(store, project, fake, tally):
    fake.script.append({"status": 404})
    with pytest.raises(TeacherError) as err:
        run(store, project, fake)
    assert str(err.value) == ("The server does not know model 'fake-model' (404): check the "
                              "model name and base URL.")
    tally("fault", "404 unknown model")
