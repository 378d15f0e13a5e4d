"""Team review: members and roles, leases that keep two reviewers off the same text, the
overlap two reviewers label each, resolutions, and the export's annotators column."""
import time

import pytest

from candist_core.exporting import export_dicts
from candist_core.schema import build_schema
from candist_core.store import Store
from candist_core.store.team import overlap_point

T0 = 1_000_000.0


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "team.db") as s:
        yield s


def project_with(store, n: int, *, share: float = 0.0, name: str = "p"):
    project = store.create_project(name, build_schema("t", ["a", "b", "c"]))
    store.insert_samples(project.id, [(str(i), f"text {i}", None) for i in range(n)])
    store.set_overlap_share(project.id, share)
    return project, [s.id for s in store.samples(project.id)]


# ---------------------------------------------------------------------- members
def test_members_are_lowercased_upserted_and_removed(store):
    project, _ = project_with(store, 1)
    store.add_member(project.id, "  Ann@Example.ORG ", "reviewer", added_by="boss@x.org")
    store.add_member(project.id, "ann@example.org", "owner")
    [member] = store.members(project.id)
    assert (member.email, member.role, member.project_id) == ("ann@example.org", "owner",
                                                              project.id)
    assert store.role_of(project.id, "ANN@example.org") == "owner"
    store.add_member(project.id, "bob@example.org", "reviewer")
    assert store.role_of(project.id, "bob@example.org") == "reviewer"
    assert store.role_of(project.id, "eve@example.org") is None
    assert store.remove_member(project.id, "BOB@example.org") is True
    assert store.remove_member(project.id, "bob@example.org") is False
    assert store.role_of(project.id, "bob@example.org") is None


@pytest.mark.parametrize("email, role, message", [
    ("", "reviewer", "An email address is needed."),
    ("not-an-email", "reviewer", "'not-an-email' is not an email address (name@domain)."),
    ("a@b.org", "admin", "Role must be 'owner' or 'reviewer', got 'admin'."),
])
def test_bad_members_are_refused_with_a_clear_message(store, email, role, message):
    project, _ = project_with(store, 1)
    with pytest.raises(ValueError) as err:
        store.add_member(project.id, email, role)
    assert str(err.value) == message
    assert store.members(project.id) == []


def test_the_first_user_of_a_new_database_becomes_its_owner(store):
    project, _ = project_with(store, 1)
    assert not store.has_owner()
    assert store.claim_owner_if_none("First@x.org") is True
    assert store.claim_owner_if_none("second@x.org") is False
    assert store.has_owner()
    assert [m.email for m in store.members(None)] == ["first@x.org"]
    # A database owner owns every project.
    assert store.role_of(project.id, "first@x.org") == "owner"
    assert store.role_of(None, "first@x.org") == "owner"


# ---------------------------------------------------------------------- leases
def test_two_reviewers_never_get_the_same_text(store):
    project, ids = project_with(store, 20)
    given = [store.claim_next(project.id, who, ids, now=T0) for who in ("ann", "bob", "cy")]
    assert given == ids[:3]
    assert {(l.who, l.sample_id) for l in store.active_leases(project.id, now=T0)} == {
        ("ann", ids[0]), ("bob", ids[1]), ("cy", ids[2])}


def test_a_reload_resumes_the_same_text_and_a_decision_releases_it(store):
    project, ids = project_with(store, 5)
    first = store.claim_next(project.id, "ann", ids, now=T0)
    assert store.claim_next(project.id, "ann", ids, now=T0 + 5) == first    # a reload
    store.record_decision(project.id, first, action="label", label="a", who="ann")
    assert store.active_leases(project.id) == []
    assert store.claim_next(project.id, "ann", ids, now=T0 + 10) == ids[1]
    assert store.claim_next(project.id, "bob", ids, now=T0 + 10) == ids[2]   # 0 decided


def test_an_expired_lease_returns_the_text_to_the_queue(store):
    project, ids = project_with(store, 3)
    assert store.claim_next(project.id, "ann", ids, ttl=60, now=T0) == ids[0]
    assert store.claim_next(project.id, "bob", ids, ttl=60, now=T0 + 30) == ids[1]
    assert store.claim_next(project.id, "cy", ids, ttl=60, now=T0 + 61) == ids[0]


def test_renew_and_release(store):
    project, ids = project_with(store, 3)
    sid = store.claim_next(project.id, "ann", ids)
    assert store.renew_lease(project.id, sid, "ann", ttl=1000)
    assert not store.renew_lease(project.id, sid, "bob")
    store.release_lease(project.id, sid, "ann")
    assert not store.renew_lease(project.id, sid, "ann")
    assert store.claim_next(project.id, "bob", ids) == sid


def test_a_claim_drops_the_reviewers_other_leases_and_skips_undone_only_when_decided(store):
    project, ids = project_with(store, 4)
    store.claim_next(project.id, "ann", ids, now=T0)
    # A new list without the held text: the old lease goes, the first open text comes.
    assert store.claim_next(project.id, "ann", ids[2:], now=T0) == ids[2]
    assert [l.sample_id for l in store.active_leases(project.id, now=T0)] == [ids[2]]
    store.record_decision(project.id, ids[2], action="skip", who="ann")
    store.undo_decision(project.id, who="ann")
    assert store.claim_next(project.id, "ann", ids, now=T0) == ids[0]


def test_an_overlap_text_goes_to_exactly_two_reviewers(store):
    project, ids = project_with(store, 200, share=0.5)
    overlap = [i for i in ids if overlap_point(0, i) < 0.5]
    single = [i for i in ids if overlap_point(0, i) >= 0.5]
    assert store.overlap_ids(project.id) == set(overlap)
    o = overlap[0]
    assert store.claim_next(project.id, "ann", [o, single[0]], now=T0) == o
    assert store.claim_next(project.id, "bob", [o, single[0]], now=T0) == o    # second
    assert store.claim_next(project.id, "cy", [o, single[0]], now=T0) == single[0]
    for who in ("ann", "bob"):
        store.record_decision(project.id, o, action="label", label="a", who=who)
    assert store.claim_next(project.id, "dan", [o], now=T0) is None
    assert store.claim_next(project.id, "ann", [o], now=T0) is None
    # One label on an overlap text: open to a second reviewer, never to the first again.
    o2 = overlap[1]
    store.record_decision(project.id, o2, action="label", label="b", who="ann")
    assert store.claim_next(project.id, "ann", [o2], now=T0) is None
    assert store.claim_next(project.id, "bob", [o2], now=T0) == o2
    # A non-overlap text decided once is closed to everybody.
    store.record_decision(project.id, single[1], action="label", label="b", who="ann")
    assert store.claim_next(project.id, "bob", [single[1]], now=T0) is None
    # Lowering the share never un-overlaps a text with two reviewers' labels.
    store.set_overlap_share(project.id, 0.0)
    assert store.overlap_ids(project.id) == {o, o2}


def test_the_overlap_share_is_checked_and_new_texts_join_at_the_same_share(store):
    project, ids = project_with(store, 0)
    assert store.overlap_share(project.id) == 0.0
    with pytest.raises(ValueError, match="between 0 and 0.5"):
        store.set_overlap_share(project.id, 0.6)
    store.set_overlap_share(project.id, 0.1, seed=7)
    assert (store.overlap_share(project.id), store.overlap_seed(project.id)) == (0.1, 7)
    store.insert_samples(project.id, [(str(i), f"t{i}", None) for i in range(5000)])
    assert 0.08 < len(store.overlap_ids(project.id)) / 5000 < 0.12


def test_the_default_overlap_share_is_ten_percent(store):
    project = store.create_project("q", build_schema("t", ["a", "b"]))
    assert store.overlap_share(project.id) == 0.10


def test_a_claim_at_100k_texts_takes_milliseconds(store):
    project, ids = project_with(store, 100_000, share=0.1)
    # A reviewer deep into the queue: the first 2,000 texts are decided by others.
    store.record_decisions(project.id, {sid: "a" for sid in ids[:2000]}, who="ann")
    timings = []
    for who in ("bob", "cy", "dan", "bob"):
        start = time.perf_counter()
        store.claim_next(project.id, who, ids)
        timings.append(time.perf_counter() - start)
    assert max(timings) < 0.05, timings


# ---------------------------------------------------------------------- resolution
def test_a_resolution_wins_in_the_export_and_is_not_an_annotator(store):
    project, ids = project_with(store, 3)
    store.record_decision(project.id, ids[0], action="label", label="a", who="ann")
    store.record_decision(project.id, ids[0], action="label", label="b", who="bob")
    store.record_decision(project.id, ids[1], action="label", label="c", who="ann")
    store.resolve(project.id, ids[0], "c", who="boss")
    with pytest.raises(ValueError, match="not a label"):
        store.resolve(project.id, ids[0], "zzz", who="boss")
    rows = {r["id"]: r for r in export_dicts(store.export_rows(project.id))}
    assert (rows["0"]["label"], rows["0"]["label_source"], rows["0"]["annotators"]) == \
        ("c", "human", 2)
    assert rows["1"]["annotators"] == 1 and rows["2"]["annotators"] == 0
    assert store.rater_labels(project.id) == [(ids[0], "ann", "a"), (ids[0], "bob", "b"),
                                              (ids[1], "ann", "c")]
    assert store.resolutions(project.id) == {ids[0]: "c"}
    # A rater who changes their label after the resolution reopens the conflict.
    store.record_decision(project.id, ids[0], action="label", label="a", who="bob")
    assert store.resolutions(project.id) == {}


# ---------------------------------------------------------------------- the pages
def page_db(tmp_path, monkeypatch, *, n: int = 12):
    """A project whose teacher hesitated on every text (so all are in the review queue)."""
    db = tmp_path / "pages.db"
    with Store(db) as store:
        project, ids = project_with(store, n, share=0.5, name="team")
        run = store.create_teacher_run(project.id, teacher="offline", model="m",
                                       strategy="ca_add", params={})
        store.record_annotations(run, [{"sample_id": sid, "candidates": ["a", "b"],
                                        "label": "a", "confidence": 0.5} for sid in ids])
        store.set_teacher_run_status(run, "done")
    monkeypatch.setenv("CANDIST_DB", str(db))
    return db, project, ids


def app_page(path: str, *, reviewer: str | None = None):
    from streamlit.testing.v1 import AppTest
    from conftest import ROOT
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if reviewer is not None:
        at.session_state["reviewer"] = reviewer
    at.run()
    at.switch_page(path)
    at.run()
    assert not at.exception, at.exception
    return at


def test_two_reviewers_on_the_review_page_see_different_texts(tmp_path, monkeypatch):
    db, project, ids = page_db(tmp_path, monkeypatch)
    with Store(db) as store:
        store.set_overlap_share(project.id, 0.0)       # no overlap: one reviewer a text
    ann = app_page("views/review.py", reviewer="ann")
    bob = app_page("views/review.py", reviewer="bob")
    assert ann.text[0].value != bob.text[0].value
    ann.run()                                            # a reload keeps the same text
    first = ann.text[0].value
    ann.run()
    assert ann.text[0].value == first
    with Store(db) as store:
        leases = {l.who: l.sample_id for l in store.active_leases(project.id)}
    assert set(leases) == {"ann", "bob"} and leases["ann"] != leases["bob"]


def test_the_agreement_page_shows_kappa_and_resolves_a_conflict(tmp_path, monkeypatch):
    db, project, ids = page_db(tmp_path, monkeypatch)
    with Store(db) as store:
        for i, sid in enumerate(ids[:8]):
            store.record_decision(project.id, sid, action="label", label="a", who="ann")
            store.record_decision(project.id, sid, action="label",
                                  label="a" if i < 6 else "b", who="bob")
    at = app_page("views/agreement.py", reviewer="boss")
    assert any("agreement beyond chance" in c.value for c in at.caption)
    assert any(m.label == "Fleiss' kappa (all raters)" for m in at.metric)
    assert any("Only 8 text(s) have two or more raters" in w.value for w in at.warning)
    assert any(s.value == "Conflicts (2)" for s in at.subheader)
    resolve = next(s for s in at.selectbox if s.key == f"resolve-{ids[6]}")
    resolve.set_value("b").run()
    assert any(s.value == "Conflicts (2)" for s in at.subheader)   # picked, not yet pressed
    next(b for b in at.button if b.key == f"resolve-go-{ids[6]}").click().run()
    assert not at.exception, at.exception
    assert any(s.value == "Conflicts (1)" for s in at.subheader)
    assert any("1 conflict(s) resolved" in c.value for c in at.caption)
    with Store(db) as store:
        assert store.resolutions(project.id) == {ids[6]: "b"}
        assert store.current_decisions(project.id)[ids[6]].who == "boss"
    share = next(n for n in at.slider if n.key == "overlap_pct")
    share.set_value(20).run()
    with Store(db) as store:
        assert store.overlap_share(project.id) == 0.2


# ---------------------------------------------------------------------- histories
def test_each_reviewer_keeps_their_own_history_on_a_text_two_people_labelled(store):
    project, ids = project_with(store, 3, share=0.5)
    store.record_decision(project.id, ids[0], action="label", label="a", who="ann")
    store.record_decision(project.id, ids[0], action="label", label="b", who="bob")
    store.record_decision(project.id, ids[1], action="label", label="c", who="ann")
    # bob decided ids[0] last, yet it stays in ann's history, with ann's label
    assert [(d.sample_id, d.label) for d in store.recent_decisions(project.id, who="ann")] \
        == [(ids[1], "c"), (ids[0], "a")]
    assert store.decision_of(project.id, ids[0], "ann").label == "a"
    # and ann can undo it: bob's label stays the text's label
    mine = store.recent_decisions(project.id, who="ann")[1]
    assert store.undo_decision_id(project.id, mine.id, who="ann") is not None
    assert store.decision_of(project.id, ids[0], "ann") is None
    assert store.current_decisions(project.id)[ids[0]].label == "b"


def test_a_resolution_is_not_in_the_owners_review_history_nor_undone_by_undo(store):
    project, ids = project_with(store, 2, share=0.5)
    store.record_decision(project.id, ids[0], action="label", label="a", who="ann")
    store.record_decision(project.id, ids[0], action="label", label="b", who="boss")
    store.resolve(project.id, ids[0], "c", who="boss")
    assert [(d.sample_id, d.label) for d in store.recent_decisions(project.id, who="boss")] \
        == [(ids[0], "b")]
    undone = store.undo_decision(project.id, who="boss")     # boss's own label, not the
    assert undone.label == "b" and not undone.resolution      # resolution
    assert store.resolutions(project.id) == {ids[0]: "c"}
    assert store.current_decisions(project.id)[ids[0]].label == "c"


# ---------------------------------------------------------------------- the CLI
@pytest.mark.slow   # six CLI subprocesses
def test_the_cli_manages_members_overlap_and_prints_agreement(tmp_path):
    import json
    from conftest import run_cli
    db = tmp_path / "cli.db"
    with Store(db) as store:
        project, ids = project_with(store, 6)
        for sid, x, y in zip(ids, "aaabbc", "aabbba"):
            store.record_decision(project.id, sid, action="label", label=x, who="ann")
            store.record_decision(project.id, sid, action="label", label=y, who="bob")
    base = ["--db", str(db), "--project", "p"]
    assert run_cli("members", *base, "--add", "Ann@X.org").stdout == \
        "ann@x.org is now reviewer of 'p'.\n"
    with Store(db) as store:
        store.add_member(None, "boss@x.org", "owner")
    assert run_cli("members", *base).stdout.splitlines() == [
        "boss@x.org\towner\tdatabase", "ann@x.org\treviewer\tproject"]
    bad = run_cli("members", *base, "--add", "nope")
    assert (bad.returncode, bad.stderr) == (2, "error: 'nope' is not an email address "
                                               "(name@domain).\n")
    bad = run_cli("overlap", *base, "--share", "0.9")
    assert bad.stderr == "error: The overlap share must be between 0 and 0.5, got 0.9.\n"
    # (a,a) (a,a) (a,b) (b,b) (b,b) (c,a): six texts rated twice, two disagree.
    out = json.loads(run_cli("agreement", *base, "--json", check=True).stdout)
    assert out["items"] == 6 and out["raters"] == ["ann", "bob"] and out["conflicts"] == 2
    assert [(c["a"], c["b"], c["n"]) for c in out["cohen_kappa"]] == [("ann", "bob", 6)]
    metrics = json.loads(run_cli("metrics", *base, "--json", check=True).stdout)
    assert metrics["agreement"] == out and "audit" in metrics and "samples" in metrics


def test_one_text_knows_whether_it_is_in_the_overlap(store):
    project, ids = project_with(store, 200, share=0.3)
    overlap = store.overlap_ids(project.id)
    assert 30 < len(overlap) < 90
    assert {sid for sid in ids if store.in_overlap(project.id, sid)} == overlap


def test_without_sign_in_a_second_opinion_is_said_only_when_another_name_labelled_it(
        tmp_path, monkeypatch):
    db, project, ids = page_db(tmp_path, monkeypatch)       # half the texts in the overlap
    ann = app_page("views/review.py", reviewer="ann")
    assert not any("Overlap text" in c.value for c in ann.caption)   # nobody else yet
    with Store(db) as store:
        for sid in ids:                                   # meanwhile bo labels every text
            store.record_decision(project.id, sid, action="label", label="a", who="bo")
    ann.run()                    # ann's queue still lists them: the overlap ones stay open
    assert any("Overlap text" in c.value and "under another name" in c.value
               for c in ann.caption)
    with Store(db) as store:
        shown = store.active_leases(project.id)[0].sample_id
        assert shown in store.overlap_ids(project.id)
