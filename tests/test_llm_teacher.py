"""The LLM teacher against a real loopback HTTP server speaking the OpenAI protocol:
structured output, parsing, cache, resume, concurrency, strategies, demonstrations.
Faults and key hygiene are in tests/reliability/test_network_faults.py."""
import json
import threading
import time

import pytest

from animals import FAST, KEY, SCHEMA, animals_project, run, teacher_for
from candist_core.llm_teacher import redact
from candist_core.teacher import TeacherConfig, annotate_project
from fake_openai import first_label_answer


@pytest.fixture
def project(store):
    return animals_project(store)


def test_structured_replies_become_candidate_sets(store, project, fake):
    summary = run(store, project, fake)
    assert summary.status == "done" and summary.annotated == 8 and summary.requests == 8
    rows = {r.text: r for r in store.annotations(summary.run_id)}
    assert rows["cat or dog"].candidates == ["cat", "dog"]
    assert rows["a dog barks"].label == "dog"
    fmt = fake.chat_requests()[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["properties"]["labels"]["items"]["enum"] == \
        ["cat", "dog", "bird"]
    assert fake.chat_requests()[0]["temperature"] == 0.3


@pytest.mark.parametrize("status", [400, 422, 500])
def test_a_server_without_json_schema_gets_the_next_format_at_once(store, project, fake,
                                                                   status):
    fake.script.append({"status": status})   # llama-cpp-python answers 500
    summary = run(store, project, fake)
    assert (summary.annotated, summary.requests) == (8, 9)
    assert fake.chat_requests()[1]["response_format"]["type"] == "json_object"
    assert "schema" in fake.chat_requests()[1]["response_format"]
    assert fake.times[1] - fake.times[0] < 0.3   # not after the client's backoff


def test_a_transient_fault_before_the_format_is_known_keeps_the_format(store, project, fake):
    fake.script.append({"status": 429})
    summary = run(store, project, fake)
    assert (summary.annotated, summary.requests) == (8, 9)
    assert {r["response_format"]["type"] for r in fake.chat_requests()} == {"json_schema"}


def test_free_text_replies_are_parsed(store, project, fake):
    fake.answer = lambda body: "I think it's probably a Dog, maybe a CAT."
    summary = run(store, project, fake, strategy="ca_add")
    assert all(r.candidates == ["dog", "cat"] for r in store.annotations(summary.run_id))


def test_replies_are_cached_and_never_requested_twice(store, project, fake):
    run(store, project, fake)
    other = store.create_project("copy", SCHEMA)
    store.insert_samples(other.id, [(s.ext_id, s.text, None)
                                    for s in store.samples(project.id)])
    summary = annotate_project(store, other.id, teacher_for(fake),
                               TeacherConfig(strategy="ca_all", **FAST))
    assert (summary.requests, summary.cached, summary.annotated) == (0, 8, 8)
    assert len(fake.chat_requests()) == 8


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
    assert (summary.annotated, summary.requests) == (8, 8)
    assert fake.max_in_flight >= 3
    assert time.perf_counter() - start < 8 * 0.3


def test_self_consistency_votes_over_k_replies(store, project, fake):
    replies = iter(['{"labels": ["cat"]}', '{"labels": ["cat", "dog"]}',
                    '{"labels": ["bird"]}'] * 8)
    fake.answer = lambda body: next(replies)
    summary = run(store, project, fake, strategy="sc", samples=3, top_k=2)
    assert summary.requests == 24
    row = store.annotations(summary.run_id)[0]
    assert row.candidates == ["cat", "dog"] and row.label == "cat"
    assert row.confidence == pytest.approx(2 / 3)
    seeds = {r["seed"] for r in fake.chat_requests()}
    assert seeds == {0, 1, 2}


def test_select_asks_only_about_multi_label_sets_and_within_them(store, project, fake):
    base = run(store, project, fake)
    sets = {r.sample_id: r.candidates for r in store.annotations(base.run_id)}
    fake.requests.clear()
    fake.answer = lambda body: json.dumps({"label": "dog"})
    summary = run(store, project, fake, strategy="select")
    multi = [s for s in sets.values() if len(s) > 1]
    assert summary.requests == len(multi) == 1
    request = fake.chat_requests()[0]
    assert request["response_format"]["json_schema"]["schema"]["properties"]["label"][
        "enum"] == ["cat", "dog"]
    labels = {r.sample_id: r.label for r in store.annotations(summary.run_id)}
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


def test_key_like_strings_are_redacted():
    assert redact(f"bad key {KEY} and sk-abcdefghijkl", [KEY]) == \
        "bad key [redacted] and [redacted]"
