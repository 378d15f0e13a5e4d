"""The LLM teacher against a real loopback HTTP server speaking the OpenAI protocol, with
injected faults: retries, error records, cache, resume, concurrency, key hygiene."""
import json
import threading
import time

import pytest

from candist_core.llm_teacher import LLMTeacher, redact
from candist_core.metrics import project_metrics
from candist_core.records import TeacherError
from candist_core.schema import build_schema
from candist_core.teacher import TeacherConfig, annotate_project
from fake_openai import FakeOpenAI, first_label_answer

KEY = "sk-test-RECOGNISABLE-0123456789abcdef"
SCHEMA = build_schema("Sort animal questions.", ["cat", "dog", "bird"])
FAST = dict(shots=0, backoff_base=0.01, max_retries=2, timeout=1.0, concurrency=1)


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def project(store):
    project = store.create_project("animals", SCHEMA)
    texts = ["is my cat ok", "a dog barks", "bird song", "cat or dog", "which bird",
             "the dog", "my cat", "no animal here"]
    store.insert_samples(project.id, [(str(i), t, None) for i, t in enumerate(texts)])
    return project


def teacher_for(fake, **kw):
    return LLMTeacher.connect(base_url=fake.url, model="fake-model", api_key=KEY, **kw)


def run(store, project, fake, *, teacher=None, **config):
    config = TeacherConfig(**{"strategy": "ca_all", **FAST, **config})
    return annotate_project(store, project.id, teacher or teacher_for(fake), config)


def test_structured_replies_become_candidate_sets(store, project, fake):
    summary = run(store, project, fake)
    assert summary.status == "done" and summary.annotated == 8 and summary.requests == 8
    rows = {r["text"]: r for r in store.annotations(summary.run_id)}
    assert rows["cat or dog"]["candidates"] == ["cat", "dog"]
    assert rows["a dog barks"]["label"] == "dog"
    fmt = fake.chat_requests()[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["properties"]["labels"]["items"]["enum"] == \
        ["cat", "dog", "bird"]
    assert fake.chat_requests()[0]["temperature"] == 0.3


def test_a_server_without_json_schema_gets_the_next_format(store, project, fake):
    fake.script.append({"status": 400})
    summary = run(store, project, fake)
    assert summary.annotated == 8
    assert fake.chat_requests()[1]["response_format"]["type"] == "json_object"
    assert "schema" in fake.chat_requests()[1]["response_format"]


def test_free_text_replies_are_parsed(store, project, fake):
    fake.answer = lambda body: "I think it's probably a Dog, maybe a CAT."
    summary = run(store, project, fake, strategy="ca_add")
    assert all(r["candidates"] == ["dog", "cat"] for r in store.annotations(summary.run_id))


FAULTS = [
    ("rate_limit", {"status": 429}),
    ("server_error", {"status": 500}),
    ("server_error", {"status": 502}),
    ("server_error", {"status": 503}),
    ("connection", "reset"),
    ("timeout", "hang"),
    ("malformed_response", "malformed"),
]


@pytest.mark.parametrize("kind, fault", FAULTS, ids=[f"{k}-{f}" for k, f in FAULTS])
def test_a_fault_that_persists_is_retried_then_recorded_and_the_batch_goes_on(
        store, project, fake, kind, fault):
    fake.script.extend([{"content": '{"labels": ["cat"]}'}, fault, fault, fault])
    summary = run(store, project, fake)
    assert summary.status == "incomplete"
    assert (summary.annotated, summary.failed) == (7, 1)
    assert dict(summary.errors) == {kind: 1}
    assert len(fake.chat_requests()) == 8 + 2  # the failing sample was tried 3 times
    errors = store.annotations(summary.run_id, errors_only=True)
    assert [e["error_kind"] for e in errors] == [kind]


@pytest.mark.parametrize("kind, fault", FAULTS, ids=[f"{k}-{f}" for k, f in FAULTS])
def test_a_transient_fault_is_retried_and_the_sample_annotated(store, project, fake, kind,
                                                               fault):
    fake.script.extend([{"content": '{"labels": ["cat"]}'}, fault])
    summary = run(store, project, fake)
    assert (summary.status, summary.annotated, summary.requests) == ("done", 8, 9)


def test_retry_after_is_honoured(store, project, fake):
    fake.script.extend([{"content": '{"labels": ["cat"]}'},
                        {"status": 429, "headers": {"Retry-After": "1"}}])
    run(store, project, fake)
    assert fake.times[2] - fake.times[1] >= 0.95


def test_backoff_grows_between_attempts(store, project, fake):
    fake.script.extend([{"content": '{"labels": ["cat"]}'}, {"status": 503}, {"status": 503}])
    run(store, project, fake, backoff_base=0.2)
    gaps = [fake.times[2] - fake.times[1], fake.times[3] - fake.times[2]]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4


@pytest.mark.parametrize("content, kind", [
    ('{"labels": ["banana"]}', "no_valid_label"),
    ("none of these fit", "no_valid_label"),
    ("", "unparseable"),
])
def test_replies_naming_no_valid_label_are_recorded_and_counted(store, project, fake,
                                                                 content, kind):
    fake.script.extend([{"content": '{"labels": ["cat"]}'}, {"content": content}])
    summary = run(store, project, fake)
    assert dict(summary.errors) == {kind: 1}
    error = store.annotations(summary.run_id, errors_only=True)[0]
    assert error["raw"] == content
    assert project_metrics(store, project.id)["teacher"]["invalid_rate"] == 1 / 8


def test_an_empty_choice_list_is_an_error_row(store, project, fake):
    fake.script.extend([{"content": '{"labels": ["cat"]}'}, "empty_choices"])
    summary = run(store, project, fake)
    assert dict(summary.errors) == {"empty_choices": 1}


def test_replies_are_cached_and_never_requested_twice(store, project, fake):
    run(store, project, fake)
    other = store.create_project("copy", SCHEMA)
    store.insert_samples(other.id, [(s.ext_id, s.text, None)
                                    for s in store.samples(project.id)])
    summary = annotate_project(store, other.id, teacher_for(fake),
                               TeacherConfig(strategy="ca_all", **FAST))
    assert (summary.requests, summary.cached, summary.annotated) == (0, 8, 8)
    assert len(fake.chat_requests()) == 8


def test_errors_are_not_cached(store, project, fake):
    fake.script.extend([{"content": '{"labels": ["cat"]}'}] + [{"status": 500}] * 3)
    first = run(store, project, fake)
    assert first.failed == 1
    second = run(store, project, fake)
    assert (second.run_id, second.already_done, second.requests, second.status) == \
        (first.run_id, 7, 1, "done")


def test_a_cancelled_run_resumes_without_repeating_samples(store, project, fake):
    cancel = threading.Event()

    def progress(done, total, stats):
        if done >= 3:
            cancel.set()

    config = TeacherConfig(strategy="ca_all", **FAST)
    first = annotate_project(store, project.id, teacher_for(fake), config, progress=progress,
                             cancel=cancel)
    assert first.status == "cancelled" and first.annotated == 3
    second = annotate_project(store, project.id, teacher_for(fake), config)
    assert (second.run_id, second.already_done, second.annotated) == (first.run_id, 3, 5)
    texts = [r["messages"][-1]["content"] for r in fake.chat_requests()]
    assert len(texts) == len(set(texts)) == 8


def test_concurrency_overlaps_requests(store, project, fake):
    fake.delay = 0.3
    start = time.perf_counter()
    summary = run(store, project, fake, concurrency=4)
    assert summary.annotated == 8
    assert fake.max_in_flight >= 3
    assert time.perf_counter() - start < 8 * 0.3


def test_self_consistency_votes_over_k_replies(store, project, fake):
    replies = iter(['{"labels": ["cat"]}', '{"labels": ["cat", "dog"]}',
                    '{"labels": ["bird"]}'] * 8)
    fake.answer = lambda body: next(replies)
    summary = run(store, project, fake, strategy="sc", samples=3, top_k=2)
    assert summary.requests == 24
    row = store.annotations(summary.run_id)[0]
    assert row["candidates"] == ["cat", "dog"] and row["label"] == "cat"
    assert row["confidence"] == pytest.approx(2 / 3)
    seeds = {r["seed"] for r in fake.chat_requests()}
    assert seeds == {0, 1, 2}


def test_select_asks_only_about_multi_label_sets_and_within_them(store, project, fake):
    base = run(store, project, fake)
    sets = {r["sample_id"]: r["candidates"] for r in store.annotations(base.run_id)}
    fake.requests.clear()
    fake.answer = lambda body: json.dumps({"label": "dog"})
    summary = run(store, project, fake, strategy="select")
    multi = [s for s in sets.values() if len(s) > 1]
    assert summary.requests == len(multi) == 1
    request = fake.chat_requests()[0]
    assert request["response_format"]["json_schema"]["schema"]["properties"]["label"][
        "enum"] == ["cat", "dog"]
    labels = {r["sample_id"]: r["label"] for r in store.annotations(summary.run_id)}
    assert all(labels[sid] in sets[sid] for sid in sets)


def test_generated_demonstrations_are_retrieved_per_sample(store, project, fake):
    from candist_core.encoder import shared_encoder

    def answer(body):
        user = body["messages"][-1]["content"]
        if user.startswith("Write"):
            name = user.split("'")[1]
            return json.dumps({"texts": [f"a question about a {name}",
                                         f"another {name} question"]})
        return first_label_answer(body)

    fake.answer = answer
    teacher = teacher_for(fake, encoder=shared_encoder())
    summary = run(store, project, fake, teacher=teacher, shots=2, pool_size=6)
    assert summary.annotated == 8
    generation = [r for r in fake.chat_requests()
                  if r["messages"][-1]["content"].startswith("Write")]
    assert len(generation) == 3
    labeling = [r for r in fake.chat_requests() if r not in generation]
    bird = next(r for r in labeling if r["messages"][-1]["content"] == "Text: bird song")
    demo_turns = [m for m in bird["messages"] if m["role"] == "assistant"]
    assert len(demo_turns) == 2
    assert demo_turns[-1]["content"] == '{"labels": ["bird"]}'


def test_reviewed_samples_become_the_demonstration_pool(store, project, fake):
    from candist_core.encoder import shared_encoder
    samples = store.samples(project.id)
    store.record_decision(project.id, samples[0].id, action="label", label="cat")
    store.record_decision(project.id, samples[1].id, action="label", label="dog")
    teacher = teacher_for(fake, encoder=shared_encoder())
    run(store, project, fake, teacher=teacher, shots=1)
    assert not any(r["messages"][-1]["content"].startswith("Write")
                   for r in fake.chat_requests())
    own = next(r for r in fake.chat_requests()
               if r["messages"][-1]["content"] == "Text: is my cat ok")
    assert own["messages"][1]["content"] == "Text: a dog barks"  # never itself


def test_a_refused_key_stops_the_run_and_the_key_is_nowhere(store, project, fake, tmp_path):
    fake.script.append({"status": 401, "body": {"error": {
        "message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}})
    with pytest.raises(TeacherError) as err:
        run(store, project, fake)
    assert str(err.value) == ("The server refused the API key (401): check the key for this "
                              "server.")
    store.db.execute("PRAGMA wal_checkpoint(FULL)")
    for path in tmp_path.iterdir():
        if path.is_file():
            assert KEY.encode() not in path.read_bytes()
    assert store.teacher_runs(project.id)[0]["status"] == "failed"


def test_an_unknown_model_is_named(store, project, fake):
    fake.script.append({"status": 404})
    with pytest.raises(TeacherError, match="does not know model 'fake-model'"):
        run(store, project, fake)


def test_key_like_strings_are_redacted():
    assert redact(f"bad key {KEY} and sk-abcdefghijkl", [KEY]) == \
        "bad key [redacted] and [redacted]"
