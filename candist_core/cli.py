"""``python -m candist_core``: the headless CLI. A thin layer: parse flags, call the core,
print results, turn the core's named errors into one line on stderr and exit code 2.

The command names and flags are a contract relied on outside the test suite: extend
them, never rename them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from . import demo_project
from .exporting import ExportOptions, write_export
from .importing import FORMATS, ImportOptions, import_csv
from .distill import distill_project
from .encoder import device_description, pick_device
from .metrics import project_metrics, student_run_metrics
from .prompts import STRATEGIES
from .records import CandistError, ProjectError
from .schema import load_schema
from .store import Store
from .student import HEAD_INITS, METHODS, StudentConfig, with_overrides
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
                            delimiter=args.delimiter, format=args.format)
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


@command("export")
def cmd_export(args) -> int:
    options = ExportOptions(sources=tuple(s.strip() for s in args.sources.split(",")),
                            min_confidence=args.min_confidence, below=args.below)
    with _open(args) as store:
        project = store.get_project(args.project)
        summary = write_export(store, project.id, args.out, options=options, fmt=args.format,
                               allowed_dir=args.export_dir or None)
    sources = ", ".join(f"{k} {v}" for k, v in sorted(summary.sources.items()))
    print(f"Wrote {summary.rows} rows to {args.out} ({sources or 'no rows'}).")
    return 0


@command("metrics")
def cmd_metrics(args) -> int:
    with _open(args) as store:
        project = store.get_project(args.project)
        metrics = project_metrics(store, project.id)
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
    config = _teacher_config(args)
    with _open(args) as store:
        project = store.get_project(args.project)
        plan = plan_annotation(store, project.id, config, kind=args.teacher, limit=args.limit)
        if args.plan:
            print(json.dumps(plan))
            return 0
        teacher = make_teacher(args.teacher, model=args.model, base_url=args.base_url,
                               shots=config.shots)
        if args.teacher == "openai":
            print(f"Plan: {plan['requests']} requests, ~{plan['prompt_tokens']} prompt and "
                  f"~{plan['completion_tokens']} completion tokens, ~${plan['cost']:.4f}.",
                  file=sys.stderr)
        summary = annotate_project(store, project.id, teacher, config, limit=args.limit,
                                   progress=ProgressBar("annotate", unit="text"))
    print(json.dumps(summary.to_dict()) if args.json else summary.describe())
    return 0 if summary.status == "done" else 3


@command("distill")
def cmd_distill(args) -> int:
    config = with_overrides(StudentConfig(method=args.method), epochs=args.epochs, lr=args.lr,
                            max_length=args.max_length, batch_size=args.batch_size,
                            device=args.device, model=args.model, seed=args.seed,
                            delta=args.delta, gamma=args.gamma, tau=args.tau,
                            head_init=args.head)
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
            tqdm.write(", ".join(parts), file=sys.stderr)

        run_id = distill_project(store, project.id, config, on_epoch=on_epoch,
                                 on_step=on_step)
        run = store.student_run(run_id)
        metrics = student_run_metrics(store, run)
    if args.json:
        print(json.dumps(metrics))
    else:
        acc = metrics["accuracy"]
        print(f"Student run #{run_id} {run.status}: best epoch {run.best_epoch} of "
              f"{metrics['epochs_run']}" + (f", accuracy vs gold {acc:.3f}" if acc is not None
                                            else "") + ".")
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

    p = add("annotate", "label the samples with the teacher (candidate sets)")
    p.add_argument("--teacher", choices=["offline", "openai"], default="offline")
    p.add_argument("--strategy", choices=list(STRATEGIES), default="ca_add")
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
                        "class, else random)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print the student metrics as JSON")

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
