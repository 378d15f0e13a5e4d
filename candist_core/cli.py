"""``python -m candist_core``: the headless CLI. A thin layer: parse flags, call the core,
print results, turn the core's named errors into one line on stderr and exit code 2.

The command names and flags are a contract relied on outside the test suite: extend
them, never rename them.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from . import demo_project
from .agreement import agreement_json, agreement_report
from .audit import quality_report, record_decision_file, write_audit_sample
from .conformal import DEFAULT_COVERAGE, STRATEGY as CONFORMAL, conformal_annotate
from .exporting import ExportOptions, neutralise, write_export
from .importing import FORMATS, ImportOptions, import_csv
from .encoder import device_description, pick_device
from .metrics import project_metrics, student_run_metrics
from .prompts import STRATEGIES
from .records import CandistError, ProjectError, StudentError
from .review import DEFAULT_SIGNAL, SIGNALS
from .review_queue import review_queue
from .schema import load_schema
from .store import Store
from .student import (EXTRA_EPOCHS, HEAD_INITS, METHODS, SELECTION_RULES, StudentConfig,
                      with_overrides)
from .teacher import TeacherConfig, annotate_project, make_teacher, plan_annotation

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def register(fn):
        COMMANDS[name] = fn
        return fn
    return register


def _open(args, *, create: bool = False) -> Store:
    path = Path(args.db)
    if not create and not path.exists():
        raise ProjectError(f"Database {path} does not exist: create it with 'init'.")
    return Store(path)


@command("init")
def cmd_init(args) -> int:
    schema = load_schema(args.labels)
    with _open(args, create=True) as store:
        project = store.create_project(args.project, schema)
    print(f"Created project {project.name!r} with {len(schema.labels)} labels in {args.db}.")
    return 0


@command("import")
def cmd_import(args) -> int:
    options = ImportOptions(text_col=args.text_col, gold_col=args.gold_col,
                            id_col=args.id_col, encoding=args.encoding,
                            delimiter=args.delimiter, format=args.format,
                            skip_bad_lines=args.skip_bad_lines,
                            gold_map=parse_gold_map(args.gold_map))
    with _open(args) as store:
        project = store.get_project(args.project)
        report = import_csv(store, project.id, args.csv, options=options)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.summary_line())
    for line in report.messages():
        print(f"warning: {line}", file=sys.stderr)
    return 0


def parse_gold_map(text: str) -> tuple[tuple[str, str], ...]:
    """``pos=positive,neg=negative`` as pairs; a part without '=' is refused."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        value, sep, label = part.partition("=")
        if not sep or not value.strip() or not label.strip():
            raise CandistError(f"--gold-map: {part!r} is not VALUE=LABEL.")
        pairs.append((value.strip(), label.strip()))
    return tuple(pairs)


@command("export")
def cmd_export(args) -> int:
    options = ExportOptions(sources=tuple(s.strip() for s in args.sources.split(",")),
                            min_confidence=args.min_confidence, below=args.below)
    with _open(args) as store:
        project = store.get_project(args.project)
        summary = write_export(store, project.id, args.out, options=options, fmt=args.format,
                               allowed_dir=args.export_dir or None)
        warn_quality(store, project.id)
    sources = ", ".join(f"{k} {v}" for k, v in sorted(summary.sources.items()))
    print(f"Wrote {summary.rows} rows to {args.out} ({sources or 'no rows'}).")
    return 0


@command("metrics")
def cmd_metrics(args) -> int:
    with _open(args) as store:
        project = store.get_project(args.project)
        metrics = project_metrics(store, project.id)
        metrics["agreement"] = agreement_json(agreement_report(store, project.id))
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key}: {json.dumps(value)}")
    return 0


class ProgressBar:
    """tqdm on stderr, fed by the core's ``progress(done, total, stats)`` callbacks: the bar
    appears with the first report (never before a refusal) and names error kinds as they
    are counted."""

    def __init__(self, label: str, *, unit: str = "it"):
        self.label, self.unit = label, unit
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int, stats: dict | None = None) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.label, unit=self.unit, file=sys.stderr,
                            dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10)
        self.bar.total = total
        self.bar.update(done - self.bar.n)
        if stats and stats.get("errors"):
            self.bar.set_postfix_str("errors: " + ", ".join(
                f"{k} {v}" for k, v in stats["errors"].items()), refresh=False)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _teacher_config(args) -> TeacherConfig:
    return TeacherConfig(
        strategy=args.strategy, temperature=args.temperature, shots=args.shots,
        concurrency=args.concurrency, samples=args.samples, top_k=args.top_k,
        timeout=args.timeout, max_retries=args.max_retries, price_in_per_1k=args.price_in,
        price_out_per_1k=args.price_out, softmax_temperature=args.softmax_temperature,
        r_add=args.r_add, r_all=args.r_all, seed=args.seed)


@command("annotate")
def cmd_annotate(args) -> int:
    from .human_teacher import annotate_with_decisions, plan_with_decisions
    if args.strategy == CONFORMAL:
        if args.with_decisions:
            raise ProjectError("--with-decisions makes a new teacher run; conformal sets are "
                               "derived from one: run them one after the other.")
        return annotate_conformal(args)
    config = _teacher_config(args)
    with _open(args) as store:
        project = store.get_project(args.project)
        plan = (plan_with_decisions if args.with_decisions else plan_annotation)(
            store, project.id, config, kind=args.teacher, limit=args.limit)
        if args.plan:
            print(json.dumps(plan))
            return 0
        teacher = make_teacher(args.teacher, model=args.model, base_url=args.base_url,
                               shots=config.shots)
        if args.teacher == "openai":
            print(f"Plan: {plan['requests']} requests, ~{plan['prompt_tokens']} prompt and "
                  f"~{plan['completion_tokens']} completion tokens, ~${plan['cost']:.4f}.",
                  file=sys.stderr)
        summary = (annotate_with_decisions if args.with_decisions else annotate_project)(
            store, project.id, teacher, config, limit=args.limit,
            progress=ProgressBar("annotate", unit="text"))
        warn_quality(store, project.id)
    print(json.dumps(summary.to_dict()) if args.json else summary.describe())
    return 0 if summary.status == "done" else 3


@command("distill")
def cmd_distill(args) -> int:
    from .distill import distill_project   # transformers: only for the commands that train
    if args.update:
        return distill_update(args)
    config = with_overrides(StudentConfig(method=args.method), epochs=args.epochs, lr=args.lr,
                            max_length=args.max_length, batch_size=args.batch_size,
                            device=args.device, model=args.model, seed=args.seed,
                            delta=args.delta, gamma=args.gamma, tau=args.tau,
                            head_init=args.head, patience=args.patience,
                            selection_rule=args.selection_rule,
                            extra_epochs=args.extra_epochs)
    bar = ProgressBar("distill", unit="step")
    with _open(args) as store:
        project = store.get_project(args.project)
        device = device_description(pick_device(config.device))

        def on_step(done: int, total: int) -> None:
            if done == 1:   # said once training really starts, not before a refusal
                tqdm.write(f"Training {config.method} on {device}.", file=sys.stderr)
            bar(done, total)

        def on_epoch(m: dict) -> None:
            parts = [f"epoch {m['epoch']}", f"loss {m['loss']:.3f}"]
            if config.method == "candist":
                parts += [f"|D_out| {m['d_out']}", f"|D_sl| {m['d_sl']}", f"|D_hc| {m['d_hc']}"]
            parts.append(f"{m['validation']} {m['selection_score']:.3f}")
            if m.get("extended"):
                parts.append(f"changed {m['changed']:.1%} of the labels: "
                             f"{m['extended']} more epoch" + "s" * (m["extended"] > 1))
            tqdm.write(", ".join(parts), file=sys.stderr)

        run_id = distill_project(store, project.id, config, on_epoch=on_epoch,
                                 on_step=on_step)
        run = store.student_run(run_id)
        metrics = student_run_metrics(store, run)
        warn_quality(store, project.id)
    if args.json:
        print(json.dumps(metrics))
    else:
        acc = metrics["accuracy"]
        print(f"Student run #{run_id} {run.status}: best epoch {run.best_epoch} of "
              f"{metrics['epochs_run']}" + (f", accuracy vs gold {acc:.3f}" if acc is not None
                                            else "") + ".")
    return 0


def distill_update(args) -> int:
    """``distill --update``: the learning loop's warm-started head update (seconds)."""
    from .distill import update_student
    with _open(args) as store:
        project = store.get_project(args.project)
        teach = store.teach_on_update(project.id) if args.teach is None else args.teach
        run_id = update_student(store, project.id, trigger="cli", teach=teach)
        run = store.student_run(run_id)
        metrics = student_run_metrics(store, run)
    if args.json:
        print(json.dumps({**metrics, "update_of": run.config.get("update_of"),
                          "human_labels": run.config.get("human_labels"),
                          "seconds": run.epochs[-1].get("seconds") if run.epochs else None,
                          "model_dir": run.checkpoint,
                          "taught_teacher_run": (run.config.get("taught_teacher") or {}
                                                 ).get("teacher_run")}))
    else:
        acc = metrics["accuracy"]
        print(f"Student run #{run_id} {run.status}: updated student #{run.config['update_of']} "
              f"with {run.config['human_labels']} human labels"
              + (f", accuracy vs gold {acc:.3f}" if acc is not None else "") + "."
              + _taught_line(run.config.get("taught_teacher"))
              + (f" Model folder: {run.checkpoint}" if run.checkpoint else ""))
    return 0


def _taught_line(taught: dict | None) -> str:
    if not taught:
        return ""
    if "error" in taught:
        return f" The teacher was not re-taught: {taught['error']}"
    return (f" It learned from teacher run #{taught['teacher_run']}, the offline teacher "
            f"re-taught with the human labels ({taught['seconds']} s).")


@command("queue")
def cmd_queue(args) -> int:
    """The next K texts in review order (id, text, candidates), as the Review page would
    serve them: for scripting the loop and benchmarking it from outside the app."""
    if args.n < 1:
        raise ProjectError("--n must be at least 1.")
    with _open(args) as store:
        project = store.get_project(args.project)
        rows = review_queue(store, project.id, n=args.n, signal=args.signal)
    try:
        out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    except OSError as exc:
        raise ProjectError(f"Cannot write {args.out}: {exc.strerror}.") from exc
    try:
        writer = csv.writer(out)
        writer.writerow(["id", "text", "candidates"])
        for row in rows:
            writer.writerow([neutralise(row["id"]), neutralise(row["text"]),
                             neutralise(json.dumps(row["candidates"]))])
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"Wrote the next {len(rows)} texts ({args.signal}) to {args.out}.",
              file=sys.stderr)
    return 0


def warn_quality(store, project_id: int) -> None:
    """The teacher quality gate's warning (or, before any audit, how to measure quality)
    on stderr: the same text the pages show."""
    report = quality_report(store, project_id)
    if report.gate:
        print(f"warning: {report.gate}", file=sys.stderr)
    elif report.hint:
        print(f"note: {report.hint}", file=sys.stderr)


def annotate_conformal(args) -> int:
    """``annotate --strategy conformal``: sets from stored scores, no new LLM calls."""
    with _open(args) as store:
        project = store.get_project(args.project)
        if args.plan:
            print(json.dumps({"samples": store.count_samples(project.id), "requests": 0,
                              "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0}))
            return 0
        result = conformal_annotate(store, project.id, coverage=args.coverage)
        warn_quality(store, project.id)
    print(json.dumps(result.to_dict()) if args.json else result.describe())
    return 0


@command("audit")
def cmd_audit(args) -> int:
    if args.draw < 0:
        raise ProjectError(f"--draw must be 0 or more, got {args.draw}.")
    with _open(args) as store:
        project = store.get_project(args.project)
        new = store.draw_audit(project.id, args.draw, seed=args.seed)
        written = write_audit_sample(store, project.id, args.out) if args.out else None
        report = quality_report(store, project.id)
    if args.json:
        print(json.dumps({"new": len(new), **report.to_json()}))
        return 0
    print(f"Audit sample: {report.drawn} texts ({len(new)} new), {report.audited} audited, "
          f"{report.skipped} skipped, {report.left} left"
          + (f"; wrote {written} rows to {args.out}" if args.out else "") + ".")
    for line in report.lines():
        print(line)
    return 0


@command("decide")
def cmd_decide(args) -> int:
    with _open(args) as store:
        project = store.get_project(args.project)
        plan = record_decision_file(store, project.id, args.csv, audit=args.audit,
                                    who=args.who)
    kind = "audit decisions" if args.audit else "decisions"
    blank = f" ({len(plan.blank_rows)} rows with no label left out)" if plan.blank_rows else ""
    print(f"Recorded {len(plan.labels)} {kind} from {args.csv}{blank}.")
    return 0


@command("predict")
def cmd_predict(args) -> int:
    from .predicting import PredictOptions, predict_file, student_model_path
    options = PredictOptions(text_col=args.text_col, batch_size=args.batch_size,
                             device=args.device, top_k=args.top_k, in_format=args.in_format,
                             out_format=args.format)
    if bool(args.model) == bool(args.project):
        raise StudentError("Give the student as --model DIR, or as --project NAME (with "
                           "--db, and --run ID for a run other than the latest).")
    if args.model:
        model_dir = Path(args.model)
    else:
        if not args.db:
            raise ProjectError("--project needs --db, the database that holds it.")
        with _open(args) as store:
            project = store.get_project(args.project)
            model_dir = student_model_path(store, project.id, args.run)
    bar = ProgressBar("predict", unit="text")
    summary = predict_file(model_dir, args.in_path, args.out, options=options,
                           on_progress=bar)
    bar.close()
    if args.json:
        print(json.dumps(summary.to_dict()))
        return 0
    top = ", ".join(f"{k} {v}" for k, v in summary.labels.most_common(5))
    print(f"Wrote {summary.rows} rows to {args.out} in {summary.seconds:.1f} s on "
          f"{summary.device} (most predicted: {top or 'none'}).")
    if summary.empty_texts:
        print(f"{summary.empty_texts} rows had an empty text and were left unlabeled.",
              file=sys.stderr)
    for old, new in summary.renamed.items():
        print(f"The input's own {old!r} column is kept as {new!r}.", file=sys.stderr)
    return 0


@command("members")
def cmd_members(args) -> int:
    with _open(args) as store:
        try:
            if args.database_owner:
                store.add_member(None, args.database_owner, "owner", added_by="cli")
                print(f"{args.database_owner.strip().lower()} owns every project of "
                      f"{args.db}.")
                return 0
            if not args.project:
                raise ProjectError("Give --project NAME (or --database-owner EMAIL).")
            project = store.get_project(args.project)
            if args.add:
                store.add_member(project.id, args.add, args.role, added_by="cli")
                print(f"{args.add.strip().lower()} is now {args.role} of {project.name!r}.")
            elif args.remove:
                if not store.remove_member(project.id, args.remove):
                    raise ProjectError(f"{args.remove.strip().lower()} is not a member of "
                                       f"{project.name!r}.")
                print(f"Removed {args.remove.strip().lower()} from {project.name!r}.")
            else:
                for m in store.members(None) + store.members(project.id):
                    scope = "database" if m.project_id is None else "project"
                    print(f"{m.email}\t{m.role}\t{scope}")
        except ValueError as exc:
            raise ProjectError(str(exc)) from None
    return 0


@command("overlap")
def cmd_overlap(args) -> int:
    with _open(args) as store:
        project = store.get_project(args.project)
        if args.share is not None:
            try:
                store.set_overlap_share(project.id, args.share, seed=args.seed)
            except ValueError as exc:
                raise ProjectError(str(exc)) from None
        share = store.overlap_share(project.id)
        n = len(store.overlap_ids(project.id))
    print(f"Overlap of {project.name!r}: {share:.0%} of the texts ({n} now) go to two "
          f"reviewers.")
    return 0


@command("agreement")
def cmd_agreement(args) -> int:
    with _open(args) as store:
        project = store.get_project(args.project)
        report = agreement_report(store, project.id)
    if args.json:
        print(json.dumps(agreement_json(report)))
        return 0
    if report is None:
        print("No text has two reviewers' labels yet.")
        return 0
    fleiss = report["fleiss_kappa"]
    print(f"{report['items']} texts with two or more raters ({', '.join(report['raters'])}); "
          f"intervals: {report['interval']}.")
    print(f"Fleiss' kappa {fleiss.value:.3f} ({fleiss.low:.3f} to {fleiss.high:.3f})")
    for p in report["cohen_kappa"]:
        e = p["estimate"]
        print(f"Cohen's kappa {p['a']} / {p['b']}: {e.value:.3f} ({e.low:.3f} to "
              f"{e.high:.3f}), {p['n']} texts")
    for label, v in report["specific_agreement"].items():
        if v["value"] is not None:
            print(f"specific agreement {label}: {v['value']:.3f} ({v['ratings']} ratings)")
    for who, e in report["vs_consensus"].items():
        print(f"{who or '(no name)'} vs consensus: {e.value:.3f} ({e.low:.3f} to "
              f"{e.high:.3f}, n={e.n})")
    print(f"conflicts: {len(report['conflicts'])}")
    return 0


@command("demo")
def cmd_demo(args) -> int:
    with _open(args, create=True) as store:
        created = demo_project.load_demo(store, if_missing=args.if_missing)
    state = "created" if created else "already present"
    print(f"Demo project {demo_project.DEMO_PROJECT!r} {state} in {args.db}.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m candist_core",
                                     description="CanDist Studio: label texts with an LLM "
                                     "teacher and a distilled student.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help: str, *, project: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--db", required=True, help="SQLite database file")
        if project:
            p.add_argument("--project", required=True, help="project name")
        return p

    p = add("init", "create a project from a labels.json")
    p.add_argument("--labels", required=True, help='labels.json: {"task", "labels": [...]}')

    p = add("import", "import texts from a CSV, JSONL or Parquet file")
    p.add_argument("--csv", required=True, metavar="FILE",
                   help="the file; its format from the name (.jsonl, .parquet, else CSV)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="the file's format when its name does not say")
    p.add_argument("--text-col", default="text")
    p.add_argument("--gold-col", default=None, help="optional gold-label column")
    p.add_argument("--id-col", default=None, help="optional id column (else ids from text)")
    p.add_argument("--encoding", default=None, help="file encoding (default: UTF-8)")
    p.add_argument("--delimiter", default=",")
    p.add_argument("--gold-map", default="", metavar="FILE=LABEL,...",
                   help="gold values of the file as the project's labels, e.g. "
                        "pos=positive,neg=negative")
    p.add_argument("--skip-bad-lines", action="store_true",
                   help="CSV: leave out lines with the wrong number of fields (each is "
                        "reported by its line number) instead of refusing the file")
    p.add_argument("--json", action="store_true", help="print the import report as JSON")

    p = add("export", "write the cleaned labels (CSV, JSONL or Parquet)")
    p.add_argument("--out", required=True,
                   help="the file; its format from the name (.jsonl, .parquet, else CSV)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="the format when the file name does not say")
    p.add_argument("--export-dir", default=os.environ.get("CANDIST_EXPORT_DIR"),
                   help="refuse to write outside this folder (default: $CANDIST_EXPORT_DIR, "
                        "unset = anywhere)")
    p.add_argument("--min-confidence", type=float, default=0.0)
    p.add_argument("--below", choices=["blank", "drop"], default="blank",
                   help="rows under --min-confidence: leave unlabeled or leave out")
    p.add_argument("--sources", default="human,student,teacher",
                   help="label sources in priority order")

    p = add("metrics", "print coverage, set sizes and accuracies")
    p.add_argument("--json", action="store_true")

    p = add("audit", "draw (or extend) the random audit sample; print the estimates")
    p.add_argument("--draw", type=int, default=0, metavar="N",
                   help="add N texts drawn uniformly at random (drawn texts stay drawn)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the whole sample as a CSV of id,text")
    p.add_argument("--json", action="store_true")

    p = add("decide", "record human labels from a CSV of id,label (all or nothing)")
    p.add_argument("--csv", required=True, metavar="FILE",
                   help="columns id (the export's id) and label; empty labels are left out")
    p.add_argument("--audit", action="store_true",
                   help="the labels are blind audit labels of the audit sample")
    p.add_argument("--who", default="", help="reviewer name stored with each decision")

    p = add("annotate", "label the samples with the teacher (candidate sets)")
    p.add_argument("--teacher", choices=["offline", "openai"], default="offline")
    p.add_argument("--strategy", choices=list(STRATEGIES) + [CONFORMAL], default="ca_add",
                   help="conformal: sets from the latest run's scores, calibrated on the "
                        "audit to hold the true label with probability >= --coverage")
    p.add_argument("--coverage", type=float, default=DEFAULT_COVERAGE,
                   help="target coverage of the conformal sets (default 0.9)")
    p.add_argument("--base-url", default=None,
                   help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 "
                        "(key from OPENAI_API_KEY)")
    p.add_argument("--model", default=None,
                   help="LLM name (openai) or local encoder directory (offline)")
    d = TeacherConfig()
    p.add_argument("--concurrency", type=int, default=d.concurrency)
    p.add_argument("--shots", type=int, default=d.shots)
    p.add_argument("--samples", type=int, default=d.samples, help="K replies for sc")
    p.add_argument("--top-k", type=int, default=d.top_k, help="labels kept for sc")
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--timeout", type=float, default=d.timeout)
    p.add_argument("--max-retries", type=int, default=d.max_retries)
    p.add_argument("--price-in", type=float, default=d.price_in_per_1k,
                   help="$ per 1k prompt tokens, for the cost estimate (default: "
                        "gpt-4o-mini's list price; 0 for your own server)")
    p.add_argument("--price-out", type=float, default=d.price_out_per_1k,
                   help="$ per 1k completion tokens (for the cost estimate)")
    p.add_argument("--softmax-temperature", type=float, default=d.softmax_temperature)
    p.add_argument("--r-add", type=float, default=d.r_add)
    p.add_argument("--r-all", type=float, default=d.r_all)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--limit", type=int, default=None, help="only the first N samples")
    p.add_argument("--plan", action="store_true", help="print the plan and spend nothing")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.add_argument("--with-decisions", action="store_true",
                   help="teach the teacher with the human labels (review and audit), in a "
                        "new run: offline, every text ranked with votes from the labelled "
                        "texts; openai, only the ambiguous texts nobody decided asked again "
                        "with the reviewed texts as demonstrations (cached replies are free)")

    p = add("distill", "train the student on the latest teacher run")
    p.add_argument("--method", choices=list(METHODS), default="candist")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None)
    p.add_argument("--model", default=None, help="local transformers model directory")
    p.add_argument("--delta", type=float, default=None)
    p.add_argument("--gamma", type=float, default=None)
    p.add_argument("--tau", type=float, default=None)
    # Checked by StudentConfig, which still takes the unadvertised "labels" of old scripts.
    p.add_argument("--head", default=None, metavar="{" + ",".join(HEAD_INITS) + "}",
                   help="how the classifier head starts (default auto: prototypes of the "
                        f"candidate sets under {StudentConfig.prototypes_below:g} samples a "
                        "class or, for candist and uniform, when the sets are pure enough "
                        "to make good centroids; else random)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--patience", type=int, default=None, metavar="N",
                   help="stop after N epochs without a better selection score "
                        "(default 0: train every epoch of --epochs)")
    p.add_argument("--extra-epochs", type=int, default=None, metavar="N",
                   help="train up to N epochs more than --epochs while the last epoch still "
                        f"changed at least {StudentConfig.settled:.0%}% of the labels (default "
                        f"{EXTRA_EPOCHS}, 0 with --method sa; 0: off)")
    p.add_argument("--selection-rule", choices=list(SELECTION_RULES), default=None,
                   help="best: the epoch with the highest label-free score; one_se: the "
                        "latest epoch within one standard error of it")
    p.add_argument("--update", action="store_true",
                   help="retrain only the latest student's head with the current human "
                        "decisions (seconds; the other flags are ignored)")
    p.add_argument("--teach", action=argparse.BooleanOptionalAction, default=None,
                   help="with --update: first re-teach the offline teacher with the human "
                        "labels, a new teacher run (default: the project's setting, on)")
    p.add_argument("--json", action="store_true", help="print the student metrics as JSON")

    p = add("queue", "write the next texts to review, in review order (id,text,candidates)")
    p.add_argument("--n", type=int, default=50, help="how many texts (default 50)")
    p.add_argument("--signal", choices=list(SIGNALS), default=DEFAULT_SIGNAL,
                   help=f"the review order (default {DEFAULT_SIGNAL}, the app's default)")
    p.add_argument("--out", default=None, metavar="FILE", help="CSV file (default: stdout)")

    p = sub.add_parser("predict", help="label a new CSV, JSONL or Parquet file with a "
                       "trained student")
    p.add_argument("--model", default=None, metavar="DIR",
                   help="a student's model folder (or use --project)")
    p.add_argument("--db", default=None, help="SQLite database file (with --project)")
    p.add_argument("--project", default=None,
                   help="use this project's latest trained student")
    p.add_argument("--run", type=int, default=None, metavar="ID",
                   help="with --project: this student run instead of the latest")
    p.add_argument("--in", dest="in_path", required=True, metavar="FILE",
                   help="texts to label; format from the name (.jsonl, .parquet, else CSV)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the labelled file: input columns + label, confidence, top_labels, "
                        "top_probs; format from the name")
    p.add_argument("--in-format", choices=FORMATS, default=None)
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="the output's format when its name does not say")
    p.add_argument("--text-col", default="text")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--top-k", type=int, default=3, help="labels listed per text")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="auto: CUDA when present, then MPS, else CPU")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = add("members", "list, add or remove a project's members (owners, reviewers)",
            project=False)
    p.add_argument("--project", default=None, help="project name")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--add", metavar="EMAIL", default=None, help="add (or re-role) EMAIL")
    who.add_argument("--remove", metavar="EMAIL", default=None, help="remove EMAIL")
    who.add_argument("--database-owner", metavar="EMAIL", default=None,
                     help="make EMAIL an owner of the whole database (every project)")
    p.add_argument("--role", choices=["reviewer", "owner"], default="reviewer")

    p = add("overlap", "show or set the share of texts two reviewers label")
    p.add_argument("--share", type=float, default=None,
                   help="0 to 0.5 (default of a project: 0.1)")
    p.add_argument("--seed", type=int, default=0)

    p = add("agreement", "agreement between reviewers: kappas, conflicts")
    p.add_argument("--json", action="store_true")

    p = add("demo", "load the bundled demo project", project=False)
    p.add_argument("--if-missing", action="store_true",
                   help="do nothing when the demo project exists")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CandistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: work saved so far is in the database", file=sys.stderr)
        return 130
