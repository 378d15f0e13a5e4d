"""The OpenAI code path against a REAL OpenAI-protocol server on 127.0.0.1: llama.cpp
serving SmolLM2-135M-Instruct. Proves the protocol path (structured output, concurrency,
kill and resume), not label quality: the model is far too small to label well."""
import signal

import pytest

from candist_core.importing import ImportOptions, import_csv
from candist_core.llm_teacher import LLMTeacher
from candist_core.teacher import TeacherConfig, annotate_project
from llama_server import CountingProxy, llama_server

pytestmark = pytest.mark.slow

FAST = dict(shots=0, max_tokens=60, timeout=60, max_retries=1)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    with llama_server(log_dir=tmp_path_factory.mktemp("llama")) as (url, _):
        yield url


@pytest.fixture
def trec(store, trec_project, trec_dir):
    import_csv(store, trec_project.id, trec_dir / "test.csv",
               options=ImportOptions(gold_col="label"))
    return trec_project


def teacher(url):
    return LLMTeacher.connect(base_url=url, model="smollm2")


@pytest.mark.parametrize("strategy", ["sa", "ca_add", "ca_all", "sc"])
def test_structured_replies_are_valid_label_sets_for_every_strategy(store, trec, llama,
                                                                    strategy):
    t = teacher(llama)
    summary = annotate_project(store, trec.id, t, TeacherConfig(
        strategy=strategy, samples=2, top_k=2, concurrency=2, **FAST), limit=6)
    names = set(store.label_schema(trec.id).names)
    rows = store.annotations(summary.run_id)
    good = [r for r in rows if r.candidates]
    assert len(good) >= 5, [r.error for r in rows]
    assert all(set(r.candidates) <= names and r.label == r.candidates[0]
               for r in good)
    if strategy == "sa":
        assert all(len(r.candidates) == 1 for r in good)
    assert t.structured_mode == "json_object"  # llama.cpp's response_format dialect
    assert summary.prompt_tokens > 0 and summary.completion_tokens > 0


def test_select_picks_from_the_models_own_candidates(store, trec, llama):
    t = teacher(llama)
    annotate_project(store, trec.id, t, TeacherConfig(strategy="ca_all", concurrency=2,
                                                      **FAST), limit=6)
    base = {r.sample_id: r.candidates for r in store.annotations(
        store.latest_teacher_run(trec.id).id) if r.candidates}
    summary = annotate_project(store, trec.id, t, TeacherConfig(strategy="select", **FAST),
                               limit=6)
    for row in store.annotations(summary.run_id):
        if row.candidates:
            assert row.label in base[row.sample_id]


def test_concurrency_overlaps_requests_at_the_server(store, trec, llama):
    proxy = CountingProxy(llama)
    try:
        summary = annotate_project(store, trec.id, teacher(proxy.url),
                                   TeacherConfig(strategy="sa", concurrency=4, **FAST), limit=8)
    finally:
        proxy.close()
    assert summary.annotated + summary.failed == 8
    assert proxy.max_in_flight >= 2


def test_a_killed_server_gives_a_clear_error_and_the_resumed_run_repeats_nothing(
        store, trec, tmp_path):
    config = TeacherConfig(strategy="ca_add", concurrency=1, **FAST)
    with llama_server(log_dir=tmp_path) as (url, proc):
        def kill_after_three(done, total, stats):
            if done == 3 and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        first = annotate_project(store, trec.id, teacher(url), config, limit=8,
                                 progress=kill_after_three)
    assert first.status == "incomplete"
    assert first.annotated == 3
    assert dict(first.errors) == {"connection": 5}
    errors = store.annotations(first.run_id, errors_only=True)
    assert all(e.error.startswith("APIConnectionError") for e in errors)
    done_before = store.done_sample_ids(first.run_id)
    with llama_server(log_dir=tmp_path) as (url, _):
        proxy = CountingProxy(url)
        try:
            second = annotate_project(store, trec.id, teacher(proxy.url), config, limit=8)
        finally:
            proxy.close()
    assert second.run_id == first.run_id and second.already_done == 3
    assert second.annotated + second.failed == 5
    assert len(proxy.bodies) >= 5
    asked = [b.decode() for b in proxy.bodies]
    texts = {s.id: s.text for s in store.samples(trec.id, ids=done_before)}
    assert not any(t.replace('"', '\\"') in body for t in texts.values() for body in asked)
