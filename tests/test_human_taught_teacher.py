"""The human-taught teacher (issue #13, item 2): human labels make the teacher better, not
only the student. The votes' rules on hand-made arrays; the offline teacher with the real
MiniLM encoder on a real TREC slice in a real SQLite file; the LLM path against the fake
OpenAI server on loopback, counting every request; the CLI flag and the Annotate page."""
import json

import numpy as np
import pandas as pd
import pytest

from animals import teacher_for
from candist_core.encoder import shared_encoder
from candist_core.human_teacher import (annotate_with_decisions, plan_with_decisions,
                                        reannotate_ambiguous, teach_offline)
from candist_core.human_votes import HumanVoteConfig, fit_human_votes, vote_probs
from candist_core.importing import ImportOptions, import_csv
from candist_core.records import TeacherError
from candist_core.schema import build_schema
from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project
from conftest import run_cli
from fake_openai import first_label_answer


# ------------------------------------------------------------------ votes, by hand
def unit(*rows):
    a = np.array(rows, dtype=float)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


HUMAN = unit([1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.1, 0.9, 0])
HUMAN_LABELS = np.array([0, 0, 1, 1])


@pytest.mark.parametrize("kind", ["prototypes", "knn"])
def test_votes_follow_the_nearest_human_labels(kind):
    votes, voted = vote_probs(unit([1, 0.05, 0]), HUMAN, HUMAN_LABELS, num_classes=3,
                              kind=kind, k=2, temperature=0.05)
    assert votes[0].argmax() == 0 and votes[0].sum() == pytest.approx(1)
    assert voted[0].tolist() == [True, True, False]   # nobody labelled class 2


@pytest.mark.parametrize("kind", ["prototypes", "knn"])
def test_a_human_labelled_text_never_votes_for_itself(kind):
    # The only human text of class 2 is the text being scored: no vote for class 2 is left.
    human = np.vstack([HUMAN, unit([0, 0, 1])])
    votes, voted = vote_probs(unit([0, 0, 1]), human, np.append(HUMAN_LABELS, 2),
                              num_classes=3, kind=kind, k=5, temperature=0.05, own=np.array([4]))
    assert not voted[0, 2] and votes[0, 2] == 0


def test_labels_nobody_labelled_keep_the_teachers_probability():
    fitted = fit_human_votes(np.full((4, 3), 1 / 3), HUMAN, HUMAN_LABELS, kind="prototypes")
    teacher = np.array([[0.2, 0.3, 0.5]])
    mixed = fitted.combine(teacher, unit([1, 0, 0]))
    assert mixed[0, 2] == pytest.approx(0.5)          # class 2: no human label, no vote
    assert mixed[0, 0] > mixed[0, 1] and mixed.sum() == pytest.approx(1)


def test_the_mix_weight_comes_from_the_human_labels_themselves():
    rng = np.random.default_rng(0)
    centers = unit([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0])
    labels = np.repeat([0, 1, 2], 10)
    embeddings = unit(*(centers[labels] + 0.1 * rng.normal(size=(30, 4))))
    teacher = np.full((30, 3), 0.2)
    teacher[np.arange(30), (labels + 1) % 3] = 0.6       # a teacher that is always wrong
    taught = fit_human_votes(teacher, embeddings, labels, kind="knn", k=3)
    assert taught.weight > 0.5 and taught.loo["accuracy"] == 1.0
    assert taught.loo["teacher_accuracy"] == 0.0
    # Human labels the embeddings cannot predict: the votes get no weight.
    noise = unit(*rng.normal(size=(30, 4)))
    right = np.full((30, 3), 0.2)
    right[np.arange(30), labels] = 0.6                  # a teacher that is always right
    assert fit_human_votes(right, noise, labels, kind="knn", k=3).weight == 0.0


def test_bad_inputs_name_what_is_wrong():
    with pytest.raises(ValueError, match="kind must be one of prototypes, knn"):
        HumanVoteConfig(kind="mean")
    with pytest.raises(ValueError, match="human_labels must be M = 4 label indices"):
        fit_human_votes(np.full((4, 3), 1 / 3), HUMAN, np.array([0, 1, 2, 3]))
    fitted = fit_human_votes(np.full((4, 3), 1 / 3), HUMAN, HUMAN_LABELS)
    with pytest.raises(ValueError, match=r"embeddings must have shape \(1, 3\)"):
        fitted.combine(np.full((1, 3), 1 / 3), np.ones((1, 2)))


# ------------------------------------------------------- the offline teacher, real TREC
@pytest.fixture
def trec_pool(store, trec_project, trec_dir, tmp_path):
    frame = pd.read_csv(trec_dir / "train.csv").sample(n=240, random_state=3)
    frame.to_csv(tmp_path / "pool.csv", index=False)
    import_csv(store, trec_project.id, tmp_path / "pool.csv",
               options=ImportOptions(gold_col="label"))
    return trec_project


def label_with_gold(store, project, n, *, seed=0, audit=False):
    """People label ``n`` texts drawn at random, rightly (their gold label)."""
    samples = store.samples(project.id)
    chosen = np.random.default_rng(seed).choice(len(samples), n, replace=False)
    labels = {samples[i].id: samples[i].gold for i in chosen}
    store.record_decisions(project.id, labels, audit=audit)
    return labels


def accuracy_on_the_rest(store, run_id, human):
    rows = [r for r in store.annotations(run_id) if r.sample_id not in human]
    return np.mean([r.label == r.gold for r in rows]), len(rows)


COOKING = ["how long do I boil an egg", "a recipe for tomato soup", "bake bread at home",
           "how much salt in pasta water", "slice onions without crying",
           "best way to roast a chicken"]
FOOTBALL = ["who won the match last night", "the striker scored twice",
            "a penalty in the final minute", "the goalkeeper saved it",
            "league table after the derby", "the referee showed a red card"]


@pytest.fixture
def vague(store):
    """Two kinds of messages whose label descriptions say nothing about them."""
    project = store.create_project("vague", build_schema("Sort the messages.",
                                                         ["first kind", "second kind"]))
    store.insert_samples(project.id, [(t, t, "first kind") for t in COOKING]
                         + [(t, t, "second kind") for t in FOOTBALL])
    return project, {s.text: s.id for s in store.samples(project.id)}


def test_labels_the_descriptions_cannot_tell_apart_are_learned_from_a_few_human_labels(
        store, vague):
    project, ids = vague
    teacher = OfflineTeacher(shared_encoder())
    plain = annotate_project(store, project.id, teacher, TeacherConfig(strategy="sa"))
    human = {ids[t]: "first kind" for t in COOKING[:3]} | {
        ids[t]: "second kind" for t in FOOTBALL[:3]}
    store.record_decisions(project.id, human)
    taught = teach_offline(store, project.id, teacher, TeacherConfig(strategy="sa"))
    before, n = accuracy_on_the_rest(store, plain.run_id, human)
    after, _ = accuracy_on_the_rest(store, taught.run_id, human)
    assert n == 6 and before < 0.8 and after == 1.0
    assert store.teacher_run(taught.run_id).params["vote_weight"] > 0


def test_human_labels_raise_the_offline_teachers_accuracy_on_real_texts(store, trec_pool):
    teacher = OfflineTeacher(shared_encoder())
    plain = annotate_project(store, trec_pool.id, teacher, TeacherConfig(strategy="sa"))
    human = label_with_gold(store, trec_pool, 80)
    taught = teach_offline(store, trec_pool.id, teacher, TeacherConfig(strategy="sa"))
    before, n = accuracy_on_the_rest(store, plain.run_id, human)
    after, _ = accuracy_on_the_rest(store, taught.run_id, human)
    assert n == 160
    assert after > before + 0.05, (before, after)   # measured: 0.425 -> 0.525


def test_teaching_makes_a_new_run_and_leaves_the_old_one_untouched(store, vague):
    project, ids = vague
    teacher = OfflineTeacher(shared_encoder())
    config = TeacherConfig(strategy="ca_all")
    first = annotate_project(store, project.id, teacher, config)
    old = [(r.sample_id, r.candidates) for r in store.annotations(first.run_id)]
    store.record_decisions(project.id, {ids[COOKING[0]]: "first kind",
                                        ids[FOOTBALL[0]]: "second kind"})
    audit = store.draw_audit(project.id, 3, seed=1)
    store.record_decisions(project.id, {sid: "first kind" if sid in {ids[t] for t in COOKING}
                                        else "second kind" for sid in audit}, audit=True)
    taught = teach_offline(store, project.id, teacher, config)
    assert taught.run_id != first.run_id and taught.status == "done"
    assert [(r.sample_id, r.candidates) for r in store.annotations(first.run_id)] == old
    assert store.latest_teacher_run(project.id).id == taught.run_id
    run = store.teacher_run(taught.run_id)
    assert run.strategy == "ca_all"
    assert run.params["human_taught"] is True
    assert run.params["human_labels"] == store.human_label_count(project.id) >= 4  # + audit
    assert run.params["human_votes"] == HumanVoteConfig().kind
    assert 0 <= run.params["vote_weight"] <= 1
    # The same decisions again: the same run, nothing redone; a new decision: a new run.
    again = teach_offline(store, project.id, teacher, config)
    assert (again.run_id, again.already_done, again.annotated) == (taught.run_id, 12, 0)
    unlabelled = next(t for t in COOKING[1:] if ids[t] not in audit)
    store.record_decision(project.id, ids[unlabelled], action="label", label="first kind")
    assert teach_offline(store, project.id, teacher, config).run_id not in (
        first.run_id, taught.run_id)
    assert len(store.teacher_runs(project.id)) == 3


def test_there_is_nothing_to_teach_before_anyone_labels(store, vague):
    with pytest.raises(TeacherError, match="No human labels yet"):
        teach_offline(store, vague[0].id, OfflineTeacher(shared_encoder()), TeacherConfig())


# ---------------------------------------------------------- the LLM path, on loopback
SCHEMA = build_schema("Sort animal questions.", ["cat", "dog", "bird"])
TEXTS = ["is my cat ok", "a dog barks", "bird song", "cat or dog", "dog or bird",
         "cat and bird", "dog and cat", "the dog"]
FAST = dict(max_retries=2, timeout=2.0, concurrency=1)


def shown_examples(body) -> int:
    return sum(1 for m in body["messages"] if m["role"] == "assistant")


def answer(body):
    """Without examples, every animal named; with examples, "or" questions get one label
    (the first named) and "and" questions stay ambiguous."""
    reply = json.loads(first_label_answer(body))
    text = body["messages"][-1]["content"]
    if shown_examples(body) and " or " in text:
        reply["labels"] = reply["labels"][:1]
    return json.dumps(reply)


@pytest.fixture
def animals(store, fake):
    fake.answer = answer
    project = store.create_project("animals", SCHEMA)
    store.insert_samples(project.id, [(str(i), t, None) for i, t in enumerate(TEXTS)])
    first = annotate_project(store, project.id, teacher_for(fake),
                             TeacherConfig(strategy="ca_all", shots=0, **FAST))
    assert first.requests == 8
    ids = {s.text: s.id for s in store.samples(project.id)}
    store.record_decision(project.id, ids["is my cat ok"], action="label", label="cat")
    store.record_decision(project.id, ids["a dog barks"], action="label", label="dog")
    store.record_decision(project.id, ids["dog or bird"], action="label", label="bird")
    return project, first.run_id, ids


def reannotate(store, project, fake, **config):
    return reannotate_ambiguous(store, project.id, teacher_for(fake, encoder=shared_encoder()),
                                TeacherConfig(**{"strategy": "ca_all", "shots": 2, **FAST,
                                                 **config}))


def test_the_llm_reasks_only_the_ambiguous_texts_nobody_decided(store, fake, animals):
    project, first, ids = animals
    before = len(fake.chat_requests())
    summary = reannotate(store, project, fake)
    asked = fake.chat_requests()[before:]
    assert sorted(r["messages"][-1]["content"] for r in asked) == [
        "Text: cat and bird", "Text: cat or dog", "Text: dog and cat"]
    assert all(shown_examples(r) == 2 for r in asked)     # the reviewed texts, as examples
    examples = {m["content"] for r in asked for m in r["messages"] if m["role"] == "user"}
    assert examples & {"Text: is my cat ok", "Text: a dog barks", "Text: dog or bird"}
    assert (summary.total, summary.annotated, summary.requests) == (3, 3, 3)
    new = {r.text: r.candidates for r in store.annotations(summary.run_id)}
    old = {r.text: r.candidates for r in store.annotations(first)}
    assert new["cat or dog"] == ["cat"] and old["cat or dog"] == ["cat", "dog"]
    assert new["cat and bird"] == ["cat", "bird"]
    assert {t: c for t, c in new.items() if t not in ("cat or dog", "cat and bird",
                                                        "dog and cat")} == {
        t: c for t, c in old.items() if t not in ("cat or dog", "cat and bird", "dog and cat")}
    run = store.teacher_run(summary.run_id)
    assert run.params["reannotates"] == first and run.params["human_labels"] == 3
    assert store.latest_teacher_run(project.id).id == summary.run_id


def test_a_second_identical_call_pays_nothing(store, fake, animals):
    project, _, _ = animals
    first = reannotate(store, project, fake)
    before = len(fake.requests)
    second = reannotate(store, project, fake)
    assert len(fake.requests) == before                    # not one request
    assert (second.run_id, second.requests, second.already_done) == (first.run_id, 0, 3)


def test_after_more_decisions_a_new_run_takes_paid_replies_from_the_cache(store, fake,
                                                                           animals):
    project, first, ids = animals
    once = reannotate(store, project, fake)
    store.record_decision(project.id, ids["dog and cat"], action="skip")
    before = len(fake.requests)
    twice = reannotate(store, project, fake)
    assert len(fake.requests) == before
    assert twice.run_id not in (first, once.run_id)        # a new run, history kept
    assert (twice.total, twice.requests, twice.cached) == (1, 0, 1)   # "cat and bird"
    assert {r.text: r.candidates for r in store.annotations(twice.run_id)} == \
        {r.text: r.candidates for r in store.annotations(once.run_id)}


def test_reannotating_needs_decisions_demonstrations_and_something_ambiguous(store, fake):
    project = store.create_project("animals", SCHEMA)
    store.insert_samples(project.id, [("0", "a dog barks", None), ("1", "cat or dog", None)])
    teacher = teacher_for(fake, encoder=shared_encoder())
    config = TeacherConfig(strategy="ca_all", shots=2, **FAST)
    with pytest.raises(TeacherError, match="No human labels yet"):
        reannotate_ambiguous(store, project.id, teacher, config)
    store.record_decision(project.id, store.samples(project.id)[0].id, action="label",
                          label="dog")
    with pytest.raises(TeacherError, match="run an annotation first"):
        reannotate_ambiguous(store, project.id, teacher, config)
    with pytest.raises(TeacherError, match="give shots > 0"):
        reannotate_ambiguous(store, project.id, teacher_for(fake), config)
    annotate_project(store, project.id, teacher_for(fake), TeacherConfig(
        strategy="ca_all", shots=0, **FAST))
    assert plan_with_decisions(store, project.id, config, kind="openai")["reask"] == 1
    store.record_decision(project.id, store.samples(project.id)[1].id, action="skip")
    with pytest.raises(TeacherError, match="Nothing to re-ask"):
        reannotate_ambiguous(store, project.id, teacher, config)


# ------------------------------------------------------------------ CLI and the page
@pytest.mark.slow   # three CLI processes, each loading torch
def test_annotate_with_decisions_on_the_command_line(tmp_path, fake):
    from candist_core.store import Store
    db = tmp_path / "cli.db"
    fake.answer = answer
    with Store(db) as store:
        project = store.create_project("animals", SCHEMA)
        store.insert_samples(project.id, [(str(i), t, None) for i, t in enumerate(TEXTS)])
        annotate_project(store, project.id, teacher_for(fake),
                         TeacherConfig(strategy="ca_all", shots=0, **FAST))
        ids = {s.ext_id: s.id for s in store.samples(project.id)}
        store.record_decisions(project.id, {ids["0"]: "cat", ids["1"]: "dog"})
    base = ["annotate", "--db", db, "--project", "animals"]
    llm = base + ["--teacher", "openai", "--base-url", fake.url, "--model", "fake",
                  "--strategy", "ca_all", "--shots", "2", "--with-decisions"]
    plan = json.loads(run_cli(*llm, "--plan", check=True).stdout)
    assert (plan["reask"], plan["requests"]) == (4, 4)
    out = json.loads(run_cli(*llm, "--json", check=True).stdout)
    assert (out["total"], out["requests"], out["status"]) == (4, 4, "done")
    offline = json.loads(run_cli(*base, "--with-decisions", "--json", check=True).stdout)
    assert offline["total"] == 8 and offline["run_id"] == out["run_id"] + 1


def test_the_annotate_page_offers_to_reannotate_once_people_have_decided(
        tmp_path, trec_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from candist_core.store import Store
    from conftest import ROOT
    from test_pages import wait_for_job
    db = tmp_path / "app.db"
    frame = pd.read_csv(trec_dir / "train.csv").sample(n=120, random_state=1)
    frame.to_csv(tmp_path / "slice.csv", index=False)
    with Store(db) as store:
        from candist_core.schema import load_schema
        project = store.create_project("trec", load_schema(trec_dir / "labels.json"))
        import_csv(store, project.id, tmp_path / "slice.csv",
                   options=ImportOptions(gold_col="label"))
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()), TeacherConfig())
    monkeypatch.setenv("CANDIST_DB", str(db))

    def annotate_page():
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page("views/annotate.py")
        at.run()
        assert not at.exception, at.exception
        return at

    label = "Re-annotate with what people decided"
    assert not [b for b in annotate_page().button if b.label == label]
    with Store(db) as store:
        label_with_gold(store, store.get_project("trec"), 20)
    at = annotate_page()
    button = next(b for b in at.button if b.label == label)
    assert "never votes for itself" in button.help and "earlier runs are kept" in button.help
    button.click()
    at.run()
    wait_for_job(at, "Re-annotation done")
    assert not at.error
    with Store(db) as store:
        runs = store.teacher_runs(store.get_project("trec").id)
    assert len(runs) == 2 and runs[0].params["human_labels"] == 20
    assert any(f"Latest teacher run #{runs[0].id}" in s.value for s in at.subheader)


def test_one_action_picks_the_path_by_the_teachers_kind(store, fake, animals):
    project, _, _ = animals
    summary = annotate_with_decisions(store, project.id,
                                      teacher_for(fake, encoder=shared_encoder()),
                                      TeacherConfig(strategy="ca_all", shots=2, **FAST))
    assert summary.total == 3
    offline = annotate_with_decisions(store, project.id, OfflineTeacher(shared_encoder()),
                                      TeacherConfig(strategy="ca_all"))
    assert offline.total == 8
    assert store.teacher_run(offline.run_id).params["human_labels"] == 3


def test_a_taught_run_whose_votes_got_no_weight_says_nothing_changed():
    from candist_core.human_teacher import UPDATE_TRIGGER, taught_caption
    said = taught_caption({"human_taught": True, "human_labels": 29, "vote_weight": 0.0,
                           "trigger": UPDATE_TRIGGER})
    assert "did not yet predict those labels better" in said
    assert "every candidate set is as before" in said
    assert "re-ranked with votes" in taught_caption({"human_taught": True, "human_labels": 29,
                                                     "vote_weight": 0.4})
