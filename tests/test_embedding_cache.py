"""The offline teacher's embedding cache: the encoder runs once per text, and a human-taught
run before every continuous update reads the cache instead (issue #13). Real MiniLM
encoder, real SQLite files."""
import numpy as np
import pytest

from candist_core.embedding_cache import CachingEncoder, EmbeddingCache, cache_path, text_key
from candist_core.encoder import shared_encoder
from candist_core.human_teacher import teach_for_update
from candist_core.schema import build_schema
from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project

TEXTS = ["how long do I boil an egg", "the striker scored twice", "bake bread at home",
         "who won the match last night"]


def never():
    raise AssertionError("the encoder was loaded although every text was cached")


def test_cached_vectors_are_the_encoders_and_a_second_process_encodes_nothing(tmp_path):
    path = tmp_path / "models" / "p" / "embeddings-x.npz"
    first = CachingEncoder.around(shared_encoder(), EmbeddingCache(path))
    vectors = first.encode(TEXTS)
    assert first.encoded == 4 and not path.exists()      # written on save only
    first.save()
    assert np.allclose(vectors, shared_encoder().encode(TEXTS), atol=2e-3)
    # A new cache read from disk answers in any order and loads no model.
    again = CachingEncoder(EmbeddingCache(path), "x", never)
    assert np.array_equal(again.encode(TEXTS[::-1]), vectors[::-1])
    assert again.encoded == 0
    # Half known, half new: only the new ones are encoded, and the answer does not depend
    # on what was cached (both come back float16-rounded).
    mixed = CachingEncoder.around(shared_encoder(), EmbeddingCache(path))
    out = mixed.encode([TEXTS[0], "a penalty in the final minute"])
    assert mixed.encoded == 1 and np.array_equal(out[0], vectors[0])
    fresh = CachingEncoder.around(shared_encoder(), EmbeddingCache(None))
    assert np.array_equal(fresh.encode(["a penalty in the final minute"])[0], out[1])


def test_an_unreadable_cache_is_an_empty_one_and_is_rewritten(tmp_path):
    path = tmp_path / "embeddings-x.npz"
    path.write_bytes(b"not a numpy file")
    encoder = CachingEncoder.around(shared_encoder(), EmbeddingCache(path))
    encoder.encode(TEXTS[:2])
    encoder.save()
    assert len(EmbeddingCache(path)) == 2
    assert not list(tmp_path.glob("*.part*"))


def test_an_in_memory_database_keeps_no_cache():
    assert cache_path(":memory:", "p", "all-MiniLM-L6-v2") is None


SCHEMA = build_schema("Sort the messages.", ["cooking", "football"])


@pytest.fixture
def annotated(store):
    project = store.create_project("msgs", SCHEMA)
    store.insert_samples(project.id, [(t, t, None) for t in TEXTS])
    annotate_project(store, project.id, OfflineTeacher(shared_encoder()),
                     TeacherConfig(strategy="ca_all"))
    return project


def test_the_offline_annotation_fills_the_cache_the_taught_update_reads(store, annotated):
    path = cache_path(store.path, "msgs", "all-MiniLM-L6-v2")
    assert len(EmbeddingCache(path)) == 4 + 2             # the texts and the label texts
    ids = {s.text: s.id for s in store.samples(annotated.id)}
    store.record_decisions(annotated.id, {ids[TEXTS[0]]: "cooking"})
    first = store.latest_teacher_run(annotated.id)
    summary = teach_for_update(store, annotated.id, load_encoder=never)
    run = store.teacher_run(summary.run_id)
    assert run.id != first.id and store.latest_teacher_run(annotated.id).id == run.id
    assert run.params["human_taught"] and run.params["trigger"] == "continuous update"
    assert run.strategy == "ca_all" and run.params["r_all"] == first.params["r_all"]
    assert len(store.annotations(run.id)) == 4
    # The same decisions again: the same run; nothing to teach with no human label.
    assert teach_for_update(store, annotated.id, load_encoder=never).run_id == run.id


def test_no_taught_run_without_human_labels_or_for_an_llm_run(store, annotated):
    assert teach_for_update(store, annotated.id, load_encoder=never) is None
    ids = [s.id for s in store.samples(annotated.id)]
    store.record_decisions(annotated.id, {ids[0]: "cooking"})
    llm = store.create_teacher_run(annotated.id, teacher="openai", model="m",
                                   strategy="ca_all", params={})
    store.record_annotations(llm, [{"sample_id": i, "candidates": ["cooking"],
                                    "label": "cooking"} for i in ids])
    store.set_teacher_run_status(llm, "done")
    assert teach_for_update(store, annotated.id, load_encoder=never) is None


def test_an_atomic_run_that_is_cancelled_writes_nothing(store, annotated):
    import threading
    cancel = threading.Event()
    teacher = OfflineTeacher(shared_encoder(), batch_size=2)
    seen = []

    def progress(done, total, _):
        seen.append(done)
        if done >= 2:
            cancel.set()                      # after the first batch of two

    summary = annotate_project(store, annotated.id, teacher, TeacherConfig(strategy="sa"),
                               atomic=True, cancel=cancel, progress=progress)
    assert summary.status == "cancelled" and summary.annotated == 0
    assert store.annotations(summary.run_id) == [] and max(seen) == 2
    assert store.latest_teacher_run(annotated.id).strategy == "ca_all"


def test_a_key_ending_in_zero_bytes_is_found_again(tmp_path):
    # numpy's fixed-width bytes drop trailing zeros: the keys are stored as raw bytes.
    text = next(t for t in (f"text {i}" for i in range(5000))
                if text_key(t).endswith(b"\x00"))
    path = tmp_path / "embeddings-x.npz"
    cache = EmbeddingCache(path)
    cache.add([text], np.ones((1, 3)))
    cache.save()
    assert EmbeddingCache(path).missing([text]) == []
