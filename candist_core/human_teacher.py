"""The human-taught teacher (issue #13, item 2): reviewed and audited texts make the teacher
better, not only the student.

- Offline (:func:`teach_offline`): the offline teacher ranks every text again, its label
  similarities mixed with votes from the human-labelled texts (:mod:`.human_votes`).
- LLM (:func:`reannotate_ambiguous`): the LLM is asked again about the texts that are still
  ambiguous (more than one candidate in the current run) and that no person has decided,
  with the reviewed texts as few-shot demonstrations; every other text keeps its
  annotation. Replies go through the reply cache, so nothing is paid twice.

Either way the candidate sets go into a NEW teacher run (earlier runs are kept, the new one
becomes the current one); its params say it was human-taught, with how many human labels
and a digest of the decisions it read, so the same call with the same decisions resumes
that run instead of making another. :func:`annotate_with_decisions` picks the path by the
teacher's kind (the CLI's ``annotate --with-decisions``, the Annotate page's button).
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, fields

from .embedding_cache import DEFAULT_ENCODER_NAME, CachingEncoder, EmbeddingCache, cache_path
from .human_votes import HumanVoteConfig
from .records import Sample, TeacherError, TeacherRun
from .teacher import (OfflineTeacher, Progress, RunSummary, Teacher, TeacherConfig,
                      annotate_project, human_demonstrations, plan_annotation,
                      with_embedding_cache)

NO_DECISIONS = ("No human labels yet: label some texts on the Review page (or audit them) "
                "before teaching the teacher with them.")


def decisions_digest(items) -> str:
    """A short fingerprint of decisions (sorted (sample id, action, label) triples)."""
    blob = json.dumps(sorted(items), separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- offline
def teach_offline(store, project_id: int, teacher: OfflineTeacher, config: TeacherConfig, *,
                  votes: HumanVoteConfig | None = None, limit: int | None = None,
                  progress: Progress | None = None,
                  cancel: threading.Event | None = None, atomic: bool = False,
                  extra: dict | None = None) -> RunSummary:
    """A new offline run over the project's texts (the first ``limit``) with human votes:
    the current label decisions (review and audit) vote as ``votes`` says. Its params add
    ``human_taught``, ``human_labels``, the vote kind, the weight chosen by leave-one-out
    on the human-labelled texts and the decisions' digest (and ``extra``). The project's
    embedding cache (:mod:`embedding_cache`) spares the encoder pass over texts the offline
    teacher has seen; ``atomic``: see :func:`teacher.annotate_project`."""
    pool = human_demonstrations(store, project_id)
    if pool is None:
        raise TeacherError(NO_DECISIONS)
    teacher = with_embedding_cache(store, project_id, teacher)
    taught = OfflineTeacher(teacher.encoder, batch_size=teacher.batch_size, human=pool,
                            votes=votes or HumanVoteConfig())
    fitted = taught.human_votes(store.label_schema(project_id), config)
    if fitted is None:
        raise TeacherError(NO_DECISIONS)
    mix = fitted[0]
    params = {"human_taught": True, **taught.votes.identity(),
              "human_labels": mix.loo["n"], "vote_weight": mix.weight,
              "decisions": decisions_digest(zip(pool.texts, pool.labels)), **(extra or {})}
    return annotate_project(store, project_id, taught, config, limit=limit,
                            progress=progress, cancel=cancel, params=params, atomic=atomic)


def config_of(run: TeacherRun) -> TeacherConfig:
    """The settings an offline run was made with (its recorded identity; the rest are
    defaults, which do not change an offline teacher's answers)."""
    names = {f.name for f in fields(TeacherConfig)}
    return TeacherConfig(**{k: v for k, v in run.params.items() if k in names})


def votes_of(run: TeacherRun) -> HumanVoteConfig:
    """The vote settings of a human-taught run (the default for any other run)."""
    if "human_votes" not in run.params:
        return HumanVoteConfig()
    return HumanVoteConfig(kind=run.params["human_votes"],
                           k=int(run.params.get("vote_k", HumanVoteConfig().k)))


UPDATE_TRIGGER = "continuous update"


def taught_caption(params: dict) -> str:
    """What a teacher run learned from people, as the Annotate page says it ("" for a
    run that was not human-taught)."""
    if not params.get("human_taught"):
        return ""
    n = params.get("human_labels", 0)
    if "reannotates" in params:
        return (f"Human-taught: the texts of run #{params['reannotates']} that were still "
                f"ambiguous were asked again with {n} reviewed texts as examples.")
    by = ("by a continuous update of the student, automatic or Update now (the next update "
          "replaces it; runs made on this page are kept)" if params.get("trigger") == UPDATE_TRIGGER
          else "with the re-annotate button or `annotate --with-decisions`")
    weight = params.get("vote_weight")
    if weight == 0:
        # Nothing changed: say so, rather than leave people looking for a difference.
        return (f"Human-taught, {by}: the votes of {n} human-labelled "
                f"text{'' if n == 1 else 's'} did not yet predict those labels better than "
                f"the label descriptions (vote weight 0.00), so every candidate set is as "
                f"before.")
    return (f"Human-taught: every text re-ranked with votes from {n} human-labelled "
            f"text{'' if n == 1 else 's'}"
            + (f" (vote weight {weight:.2f}, chosen by how well the votes predict those "
               f"labels)" if weight is not None else "") + f", {by}.")


def teach_for_update(store, project_id: int, *, load_encoder=None) -> RunSummary | None:
    """Before a continuous update: a new human-taught run of the offline teacher with the
    current human labels, in the settings of the current teacher run, written whole
    (atomic), so the update learns from candidate sets the human labels improved and the
    Review page shows them. None when it does not apply: the current run is an LLM's (a
    re-annotation costs money: that stays a button on the Annotate page) or there are no
    human labels. Needs no encoder pass when the texts are in the project's embedding
    cache (the offline teacher's annotation fills it); otherwise ``load_encoder()`` (the
    default encoder) embeds the others, once. Same decisions again: the same run."""
    run = store.latest_teacher_run(project_id)
    if run is None or run.teacher != "offline" or run.strategy == "select":
        return None
    if human_demonstrations(store, project_id) is None:
        return None
    path = cache_path(store.path, store.project_by_id(project_id).name, run.model)

    def load():
        if load_encoder is not None:
            return load_encoder()
        from .encoder import shared_encoder
        if run.model != DEFAULT_ENCODER_NAME:
            raise TeacherError(f"The teacher run's encoder ({run.model}) is not the default "
                               f"one and some texts are not in its embedding cache: "
                               f"re-annotate on the Annotate page.")
        return shared_encoder()

    encoder = CachingEncoder(EmbeddingCache(path), run.model, load)
    return teach_offline(store, project_id, OfflineTeacher(encoder), config_of(run),
                         votes=votes_of(run), atomic=True,
                         extra={"trigger": UPDATE_TRIGGER})


# ------------------------------------------------------------------------------ LLM
@dataclass(frozen=True)
class Reannotation:
    """What :func:`reannotate_ambiguous` would do: the run it starts from, the texts it
    asks again, and the params of the new run."""

    base: TeacherRun
    ask: list[Sample]
    keep: list          # the base run's other annotations, copied unchanged
    params: dict


def plan_reannotation(store, project_id: int, config: TeacherConfig, *, kind: str = "openai"
                      ) -> Reannotation:
    """The base run, the ambiguous undecided texts and the new run's params (no writes).

    The base is the current teacher run, unless that is itself a re-annotation with the
    same settings and decisions (the call is being repeated: resume it) or an unfinished
    one (it is never a base): then the run that one started from.
    """
    if config.strategy == "select":
        raise TeacherError("Re-annotating asks for candidate sets again: use sa, ca_add, "
                           "ca_all or sc, not select.")
    pool = human_demonstrations(store, project_id)
    if pool is None:
        raise TeacherError(NO_DECISIONS)
    decisions = store.current_decisions(project_id)
    extra = {"human_taught": True, "human_labels": len(pool.texts),
             "decisions": decisions_digest((sid, d.action, d.label or "")
                                           for sid, d in decisions.items())}
    latest = store.latest_teacher_run(project_id)
    if latest is None:
        raise TeacherError("Re-annotating re-asks the ambiguous texts of a teacher run: run "
                           "an annotation first.")
    base = latest
    previous = latest.params.get("reannotates")
    if previous is not None:
        repeated = latest.params == {**config.identity(kind), **extra, "reannotates": previous}
        if repeated or latest.status != "done":
            base = store.teacher_run(previous)
    rows = [r for r in store.annotations(base.id) if r.candidates]
    ask = [Sample(r.sample_id, r.ext_id, r.text, r.gold) for r in rows
           if len(r.candidates) > 1 and r.sample_id not in decisions]
    asked = {s.id for s in ask}
    keep = [r for r in rows if r.sample_id not in asked]
    return Reannotation(base, ask, keep, {**extra, "reannotates": base.id})


def reannotate_ambiguous(store, project_id: int, teacher: Teacher, config: TeacherConfig, *,
                         progress: Progress | None = None,
                         cancel: threading.Event | None = None) -> RunSummary:
    """A new run that asks the LLM again about the texts still ambiguous in the current run
    and without a human decision, with the reviewed texts as demonstrations (the ``shots``
    most similar per text); the base run's other annotations are copied unchanged. Replies
    already paid for come from the cache; repeating the call with the same decisions
    resumes the same run. The summary counts the texts asked again only."""
    if not teacher.uses_demonstrations or config.shots <= 0:
        raise TeacherError("Re-annotating with what people decided shows the reviewed texts "
                           "as demonstrations: give shots > 0 (--shots).")
    plan = plan_reannotation(store, project_id, config, kind=teacher.kind)
    if not plan.ask:
        raise TeacherError(f"Nothing to re-ask: no text of run #{plan.base.id} is still "
                           f"ambiguous without a human decision.")
    identity = {**config.identity(teacher.kind), **plan.params}
    run_id = store.find_teacher_run(project_id, teacher=teacher.kind, model=teacher.model,
                                    strategy=config.strategy, params=identity)
    if run_id is None:
        run_id = store.create_teacher_run(project_id, teacher=teacher.kind,
                                          model=teacher.model, strategy=config.strategy,
                                          params=identity)
    done = store.done_sample_ids(run_id)
    store.record_annotations(run_id, [
        {"sample_id": r.sample_id, "candidates": r.candidates, "label": r.label,
         "confidence": r.confidence, "raw": r.raw}
        for r in plan.keep if r.sample_id not in done])
    # annotate_project finds the run just made (same teacher, model, strategy, params).
    return annotate_project(store, project_id, teacher, config, samples=plan.ask,
                            params=plan.params, progress=progress, cancel=cancel)


# ------------------------------------------------------------------------ one action
def annotate_with_decisions(store, project_id: int, teacher: Teacher, config: TeacherConfig,
                            *, limit: int | None = None, progress: Progress | None = None,
                            cancel: threading.Event | None = None,
                            votes: HumanVoteConfig | None = None) -> RunSummary:
    """"Re-annotate with what people decided": :func:`teach_offline` for the offline
    teacher (every text, or the first ``limit``), :func:`reannotate_ambiguous` for an LLM
    (the ambiguous undecided texts of the current run; ``limit`` does not apply)."""
    if teacher.kind == "offline":
        return teach_offline(store, project_id, teacher, config, votes=votes, limit=limit,
                             progress=progress, cancel=cancel)
    return reannotate_ambiguous(store, project_id, teacher, config, progress=progress,
                                cancel=cancel)


def plan_with_decisions(store, project_id: int, config: TeacherConfig, *, kind: str,
                        limit: int | None = None) -> dict:
    """:func:`teacher.plan_annotation` for :func:`annotate_with_decisions`: for an LLM, the
    requests of the texts it would ask again (``reask`` of them, from run ``base_run``)."""
    if kind == "offline":
        return plan_annotation(store, project_id, config, kind=kind, limit=limit)
    plan = plan_reannotation(store, project_id, config, kind=kind)
    return {**plan_annotation(store, project_id, config, kind=kind, samples=plan.ask),
            "reask": len(plan.ask), "base_run": plan.base.id}
