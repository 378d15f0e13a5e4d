"""The Data page's browser (FTS5 search and filters) and the Review page's history."""
import pytest

from candist_core.schema import build_schema
from candist_core.store import Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "b.db") as s:
        yield s


def project_with_texts(store):
    project = store.create_project("p", build_schema("t", ["pos", "neg", "neutral"]))
    store.insert_samples(project.id, [("1", "The café was wonderful", None),
                                      ("2", "Terrible service, never again", None),
                                      ("3", "Service was fine; OR \"quoted\" * text", None)])
    run = store.create_teacher_run(project.id, teacher="offline", model="m",
                                   strategy="ca_all", params={})
    ids = [s.id for s in store.samples(project.id)]
    store.record_annotations(run, [
        {"sample_id": ids[0], "candidates": ["pos"], "label": "pos", "confidence": 0.9},
        {"sample_id": ids[1], "candidates": ["neg", "neutral"], "label": "neg",
         "confidence": 0.6}])
    return project, ids


def test_search_finds_words_prefixes_and_ignores_case_accents_and_operators(store):
    project, ids = project_with_texts(store)
    texts = lambda q: [r["text"] for r in store.browse_samples(project.id, search=q)]
    assert texts("SERVICE") == ["Terrible service, never again",
                                'Service was fine; OR "quoted" * text']
    assert texts("cafe") == ["The café was wonderful"]
    assert texts("wond") == ["The café was wonderful"]
    assert texts('OR "quoted" *') == ['Service was fine; OR "quoted" * text']
    assert store.count_browse(project.id, search="service never") == 1


def test_filters_follow_the_export_policy(store):
    project, ids = project_with_texts(store)
    store.record_decision(project.id, ids[1], action="label", label="neutral")
    rows = {r["id"]: r for r in store.browse_samples(project.id)}
    assert (rows["1"]["label"], rows["1"]["source"]) == ("pos", "teacher")
    assert (rows["2"]["label"], rows["2"]["source"]) == ("neutral", "human")
    assert rows["3"]["source"] == "none"
    assert [r["id"] for r in store.browse_samples(project.id, decided=True)] == ["2"]
    assert [r["id"] for r in store.browse_samples(project.id, set_size=2)] == ["2"]
    assert [r["id"] for r in store.browse_samples(project.id, set_size=0)] == ["3"]
    assert [r["id"] for r in store.browse_samples(project.id, label="pos",
                                                  source="teacher")] == ["1"]
    assert store.browse_samples(project.id, limit=1, offset=2)[0]["id"] == "3"


def test_history_lists_current_decisions_and_undoes_any_of_them(store):
    project, ids = project_with_texts(store)
    first = store.record_decision(project.id, ids[0], action="label", label="pos", who="r")
    store.record_decision(project.id, ids[1], action="skip", who="r")
    store.record_decision(project.id, ids[2], action="label", label="neg", who="other")
    assert [d.sample_id for d in store.recent_decisions(project.id, who="r")] == \
        [ids[1], ids[0]]
    assert store.undo_decision_id(project.id, first, who="r").id == first
    assert store.undo_decision_id(project.id, first, who="r") is None    # not current now
    assert ids[0] not in store.current_decisions(project.id)
