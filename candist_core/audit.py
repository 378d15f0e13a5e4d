"""How good are the labels? Estimates with 95 % intervals from the random audit, and the
teacher quality gate.

The audit (``store.audits``) is a uniformly random, seeded sample of the project's texts
that people label blind. Every estimate here reads only those audit labels: queue-chosen
decisions are picked for being hard, so they would bias any estimate downwards.

Intervals are Wilson score intervals (95 %) for a proportion: they stay inside [0, 1] and
keep close to their nominal coverage at the sample sizes an audit has (30-200 texts), where
the normal ("Wald") interval is too narrow near 0 and 1.

Estimators (``n`` audited texts, labels ``y``):

- ``teacher_accuracy``: share of audited texts whose teacher label (the latest teacher
  run's top label) equals ``y``; ``coverage``: share whose candidate set holds ``y``.
- ``mean_labels``: the mean set size of the latest teacher run over every annotated text:
  a census, not an estimate (it needs no labels), so ``low == high == value``.
- ``student_accuracy``: share of audited texts the latest student run did NOT train on
  (audit labels made after the run started, or held out for its epoch selection:
  ``StudentConfig.validation_ids``) whose student label equals ``y``.
- ``export_accuracy``, stratified: the export's rows are human rows (a current human
  label: right by definition) and the rest (student or teacher label). With ``h`` the
  share of human rows, ``export = h + (1 - h) * p`` where ``p`` is the accuracy of the
  label the export would write without a human (the student's, else the teacher's) on the
  audited texts that no queue decision labeled (and, with a student, that it did not train
  on). ``p``'s Wilson interval maps to the export's through the same line. The queue takes
  the hardest texts out of "the rest", so ``p`` from the uniform audit is, if anything, a
  little pessimistic for the rows still machine-labeled.

Audit skips are left out of every estimate.
"""
from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import NormalDist

from .records import CsvImportError

CONFIDENCE = 0.95
INTERVAL = "wilson"
SUGGESTED_AUDIT = 50     # what the hint asks for before there is any audit
GATE_MIN_AUDIT = 30      # audit labels the gate needs before it judges the teacher
GATE_MARGIN = 0.10       # top-1 accuracy within this of chance (1 / labels) fires the gate
GATE_MIN_COVERAGE = 0.5  # candidate sets holding the right label less often fire it too
ESTIMATES = ("teacher_accuracy", "coverage", "mean_labels", "student_accuracy",
             "export_accuracy")


@dataclass(frozen=True)
class Estimate:
    """A proportion (or a census, for ``mean_labels``) with its 95 % interval; ``n`` texts
    judged, ``k`` of them right (``k`` is None for a census)."""

    value: float
    low: float
    high: float
    n: int
    k: int | None = None

    def to_dict(self) -> dict:
        return {"value": round(self.value, 4), "low": round(self.low, 4),
                "high": round(self.high, 4)}

    def contains(self, x: float) -> bool:
        return self.low - 1e-9 <= x <= self.high + 1e-9


def wilson(k: int, n: int, *, confidence: float = CONFIDENCE) -> Estimate | None:
    """Wilson score interval of ``k`` successes in ``n`` trials; None when ``n`` is 0."""
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and n, got k={k}, n={n}")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, k)


def stratified(human_share: float, rest: Estimate | None) -> Estimate | None:
    """``human_share`` of rows right by definition, the rest right at ``rest``'s rate."""
    if rest is None:
        return None if human_share < 1 else Estimate(1.0, 1.0, 1.0, 0)
    line = lambda p: human_share + (1 - human_share) * p  # noqa: E731
    return Estimate(line(rest.value), line(rest.low), line(rest.high), rest.n, rest.k)


def _share(pairs: list[bool]) -> Estimate | None:
    return wilson(sum(pairs), len(pairs))


# ------------------------------------------------------------------- the estimates
def audit_estimates(evidence: list[dict], *, human_share: float, mean_labels: float | None,
                    teacher_annotated: int, student: bool, student_started: str | None = None,
                    held_out: frozenset[int] = frozenset()) -> dict[str, Estimate | None]:
    """The five estimates from the audit rows of ``Store.audit_evidence`` (pure).

    ``human_share``: share of the project's texts with a current human label;
    ``mean_labels``: the teacher run's mean set size over ``teacher_annotated`` texts;
    ``student``: whether a finished student run exists, ``student_started`` its start time
    and ``held_out`` the sample ids it validated on (never trained on).
    """
    out: dict[str, Estimate | None] = dict.fromkeys(ESTIMATES)
    if not evidence:
        return out
    taught = [r for r in evidence if r["candidates"]]
    out["teacher_accuracy"] = _share([r["teacher_label"] == r["label"] for r in taught])
    out["coverage"] = _share([r["label"] in r["candidates"] for r in taught])
    if mean_labels is not None:
        out["mean_labels"] = Estimate(mean_labels, mean_labels, mean_labels,
                                      teacher_annotated)

    def unseen(r: dict) -> bool:   # the student run never trained on this audit label
        return (r["sample_id"] in held_out or student_started is None
                or r["created"] > student_started)

    if student:
        judged = [r for r in evidence if not r["queue_labeled"] and unseen(r)]
        out["student_accuracy"] = _share([r["student_label"] == r["label"] for r in judged])
        machine = [(r["student_label"] or r["teacher_label"]) == r["label"] for r in judged]
    else:
        machine = [r["teacher_label"] == r["label"]
                   for r in evidence if not r["queue_labeled"]]
    out["export_accuracy"] = stratified(human_share, _share(machine))
    return out


# ------------------------------------------------------------------- what pages show
@dataclass(frozen=True)
class QualityReport:
    """Everything a page (and ``metrics --json``) shows about label quality.

    ``estimates``: name -> :class:`Estimate` or None (names in :data:`ESTIMATES`);
    ``sentences``: name -> one line for each estimate there is; ``gate``: the warning when
    the teacher is near chance or its sets miss the right label too often (None when it
    passes or cannot be judged); ``hint``: how to measure quality when it is unknown;
    ``judged_on``: what the gate read (``audit``, ``gold`` or None).
    """

    drawn: int
    audited: int
    skipped: int
    left: int
    labels: int
    estimates: dict[str, Estimate | None]
    sentences: dict[str, str] = field(default_factory=dict)
    gate: str | None = None
    hint: str | None = None
    judged_on: str | None = None

    def lines(self) -> list[str]:
        """The lines a page shows, in order: the gate or the hint first, then estimates."""
        head = [x for x in (self.gate, self.hint) if x]
        return head + [self.sentences[k] for k in ESTIMATES if k in self.sentences]

    def to_json(self) -> dict:
        """``metrics --json``'s ``audit`` key."""
        return {"n": self.audited,
                **{k: (e.to_dict() if e is not None else None)
                   for k, e in self.estimates.items()},
                "interval": f"{INTERVAL} {int(CONFIDENCE * 100)}%", "drawn": self.drawn,
                "skipped": self.skipped, "left": self.left,
                "counts": {k: e.n for k, e in self.estimates.items() if e is not None},
                "gate": self.gate, "hint": self.hint}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def describe(name: str, e: Estimate) -> str:
    """One line per estimate, e.g. "export: 71% right, 95% CI 64-78%, from 120 audited
    texts"."""
    ci = f"95% CI {100 * e.low:.0f}-{100 * e.high:.0f}%"
    if name == "mean_labels":
        return f"candidate sets: {e.value:.2f} labels on average (all {e.n} annotated texts)"
    if name == "teacher_accuracy":
        return f"teacher: top label {_pct(e.value)} right, {ci}, from {e.n} audited texts"
    if name == "coverage":
        return (f"candidate sets: hold the right label {_pct(e.value)} of the time, {ci}, "
                f"from {e.n} audited texts")
    if name == "student_accuracy":
        return (f"student: {_pct(e.value)} right, {ci}, from {e.n} audited texts it did not "
                f"train on")
    if name == "export_accuracy":
        return (f"export: {_pct(e.value)} right, {ci} (rows with a human label count as "
                f"right; the other rows' share is estimated from {e.n} audited texts)")
    raise ValueError(f"unknown estimate {name!r}")


def gate_warning(*, accuracy: float | None, coverage: float | None, labels: int, n: int,
                 source: str) -> str | None:
    """The warning when top-1 accuracy is within 10 points of chance or coverage is under
    50 %; None when neither (or nothing to judge). ``source``: ``audit`` or ``gold``."""
    chance = 1 / labels
    near_chance = accuracy is not None and accuracy < chance + GATE_MARGIN
    low_coverage = coverage is not None and coverage < GATE_MIN_COVERAGE
    if not (near_chance or low_coverage):
        return None
    facts = []
    if accuracy is not None:
        facts.append(f"its top label is right {_pct(accuracy)} of the time (chance: "
                     f"{_pct(chance)})")
    if coverage is not None:
        facts.append(f"its candidate sets hold the right label {_pct(coverage)} of the time")
    basis = (f"{n} audited texts" if source == "audit" else f"the gold labels of {n} texts")
    what = "close to guessing" if near_chance else "missing the right label too often"
    return (f"Teacher quality gate: the teacher is {what}: {' and '.join(facts)} (from "
            f"{basis}). Labels exported now will be mostly wrong. Use an LLM teacher "
            f"(--teacher openai / the Annotate page), write clearer label descriptions, or "
            f"review more texts before you export.")


def unknown_hint(audited: int) -> str:
    if audited == 0:
        return (f"Quality unknown: there are no gold labels and no audit yet. Audit "
                f"~{SUGGESTED_AUDIT} randomly drawn texts (Review page, Audit mode, or "
                f"'audit --draw {SUGGESTED_AUDIT}') to measure how right the labels are.")
    more = max(GATE_MIN_AUDIT, SUGGESTED_AUDIT) - audited
    return (f"Quality not known yet: {audited} audited texts; audit {more} more (Review "
            f"page, Audit mode) for estimates worth trusting.")


def quality_report(store, project_id: int) -> QualityReport:
    """The audit's estimates, their sentences, the gate and the hint for one project."""
    labels = len(store.label_schema(project_id).labels)
    status = store.audit_status(project_id)
    teacher = store.latest_teacher_run(project_id)
    student = store.latest_student_run(project_id)
    evidence = store.audit_evidence(project_id, teacher_run=teacher.id if teacher else None,
                                    student_run=student.id if student else None)
    total = store.count_samples(project_id)
    human_share = store.human_label_count(project_id) / total if total else 0.0
    mean_labels, annotated = (store.mean_set_size(teacher.id) if teacher else (None, 0))
    estimates = audit_estimates(
        evidence, human_share=human_share, mean_labels=mean_labels,
        teacher_annotated=annotated, student=student is not None,
        student_started=student.created if student else None,
        held_out=frozenset((student.config or {}).get("validation_ids") or ())
        if student else frozenset())
    if not evidence:   # no audit: the census alone is no quality estimate
        estimates["mean_labels"] = None
    sentences = {k: describe(k, e) for k, e in estimates.items() if e is not None}
    gate = hint = judged_on = None
    acc, cov = estimates["teacher_accuracy"], estimates["coverage"]
    if teacher is not None:
        gold_n, gold_right, gold_covered = store.gold_agreement(teacher.id)
        if acc is not None and acc.n >= GATE_MIN_AUDIT:
            judged_on = "audit"
            gate = gate_warning(accuracy=acc.value, coverage=cov.value if cov else None,
                                labels=labels, n=acc.n, source="audit")
        elif gold_n:
            judged_on = "gold"
            gate = gate_warning(accuracy=gold_right / gold_n, coverage=gold_covered / gold_n,
                                labels=labels, n=gold_n, source="gold")
        else:
            hint = unknown_hint(status["labeled"])
    return QualityReport(status["drawn"], status["labeled"], status["skipped"],
                         status["left"], labels, estimates, sentences, gate, hint, judged_on)


# ------------------------------------------------------------------ model selection
def selection_ids(store, project_id: int, *, minimum: int = 20, seed: int = 0
                  ) -> tuple[int, ...]:
    """Audited texts a student should hold out for its epoch selection: with at least
    ``minimum`` audit labels, a seeded half of them (at least ``minimum``); the other half
    trains as fixed targets. Empty below ``minimum``. The held-out half is also what
    ``student_accuracy`` is measured on (the run's config records it)."""
    labeled = sorted(sid for sid, d in store.audit_decisions(project_id).items()
                     if d.action == "label")
    if len(labeled) < minimum:
        return ()
    k = max(minimum, len(labeled) // 2)
    return tuple(sorted(random.Random(seed).sample(labeled, k)))


def with_audit_selection(store, project_id: int, config):
    """``config`` (a StudentConfig) selecting its epoch on held-out audited texts when
    there are enough (see :func:`selection_ids`); unchanged otherwise."""
    if config.validation_ids:
        return config
    ids = selection_ids(store, project_id, minimum=config.min_human_validation,
                        seed=config.seed)
    return replace(config, validation_ids=ids) if ids else config


# ------------------------------------------------------------ decisions from a file
@dataclass(frozen=True)
class DecisionPlan:
    """What ``decide --csv`` would write: sample id -> label, and the rows left blank."""

    labels: dict[int, str]
    blank_rows: list[int]


def read_decision_file(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV with (at least) the columns ``id`` and ``label`` (UTF-8, with or
    without BOM)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in reader.fieldnames or []]
            rows = [{(k or "").strip(): (v or "") for k, v in row.items()} for row in reader]
    except FileNotFoundError:
        raise CsvImportError(f"Decision file not found: {path}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CsvImportError(f"{path} is not a UTF-8 CSV file ({exc}).") from None
    if "id" not in columns or "label" not in columns:
        raise CsvImportError(f"{path} needs the columns id and label (found: "
                             f"{', '.join(columns) or 'none'}).")
    return rows


def plan_decisions(rows: list[dict[str, str]], *, source: str, ext_ids: dict[str, int],
                   names: list[str], audit_ids: set[int] | None = None) -> DecisionPlan:
    """Check every row before anything is written (pure). Ids are the export's ``id``
    (``ext_id``); labels match the schema ignoring case and surrounding spaces; rows with
    an empty label are left out. ``audit_ids``: when given (``--audit``), every id must be
    in the audit sample. Any other problem raises one :class:`CsvImportError` line naming
    the row (1-based data rows)."""
    by_lower = {n.lower(): n for n in names}
    labels: dict[int, str] = {}
    first_row: dict[int, int] = {}
    blank = []
    for number, row in enumerate(rows, start=1):
        ext, label = row.get("id", "").strip(), row.get("label", "").strip()
        if not label:
            blank.append(number)
            continue
        sid = ext_ids.get(ext)
        if sid is None:
            raise CsvImportError(f"Unknown id {ext!r} in {source} (row {number}): ids are "
                                 f"the export's id column.")
        name = by_lower.get(label.lower())
        if name is None:
            raise CsvImportError(f"Unknown label {label!r} in {source} (row {number}): use "
                                 f"one of {', '.join(names)}.")
        if audit_ids is not None and sid not in audit_ids:
            raise CsvImportError(f"Id {ext!r} in {source} (row {number}) is not in the audit "
                                 f"sample: draw it with 'audit --draw', or leave out --audit.")
        if sid in first_row:
            raise CsvImportError(f"Id {ext!r} appears twice in {source} (rows "
                                 f"{first_row[sid]} and {number}).")
        first_row[sid] = number
        labels[sid] = name
    return DecisionPlan(labels, blank)


def record_decision_file(store, project_id: int, path: str | Path, *, audit: bool = False,
                         who: str = "") -> DecisionPlan:
    """``decide --csv``: check the whole file, then write its labels in one transaction
    (all or nothing)."""
    rows = read_decision_file(path)
    names = store.label_schema(project_id).names
    samples = store.samples(project_id)
    ext_ids = {s.ext_id: s.id for s in samples}
    audit_ids = {s.id for s in store.audit_sample(project_id)} if audit else None
    plan = plan_decisions(rows, source=str(path), ext_ids=ext_ids, names=names,
                          audit_ids=audit_ids)
    store.record_decisions(project_id, plan.labels, who=who, audit=audit)
    return plan


def write_audit_sample(store, project_id: int, path: str | Path) -> int:
    """The audit sample as a CSV of ``id,text`` in draw order (texts a spreadsheet would
    run as formulas are neutralised); written atomically. Returns the rows written."""
    from .exporting import neutralise
    samples = store.audit_sample(project_id)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text"])
        writer.writerows([s.ext_id, neutralise(s.text)] for s in samples)
    tmp.replace(path)
    return len(samples)
