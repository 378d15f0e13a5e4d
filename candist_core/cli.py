"""``python -m candist_core``: the headless CLI. A thin layer: parse flags, call the core,
print results, turn the core's named errors into one line on stderr and exit code 2.

The command names and flags are a contract relied on outside the test suite: extend
them, never rename them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from . import demo
from .exporting import ExportOptions, write_export
from .importing import ImportOptions, import_csv
from .metrics import project_metrics
from .records import CandistError, ProjectError
from .schema import load_schema
from .store import Store

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
                            delimiter=args.delimiter)
    with _open(args) as store:
        project = store.get_project(args.project)
        report = import_csv(store, project.id, args.csv, options=options)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"Imported {report.imported} of {report.rows} rows "
              f"({report.already_present} already present).")
    for line in report.messages():
        print(f"warning: {line}", file=sys.stderr)
    return 0


@command("export")
def cmd_export(args) -> int:
    options = ExportOptions(sources=tuple(s.strip() for s in args.sources.split(",")),
                            min_confidence=args.min_confidence, below=args.below)
    with _open(args) as store:
        project = store.get_project(args.project)
        summary = write_export(store, project.id, args.out, options=options)
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


@command("demo")
def cmd_demo(args) -> int:
    with _open(args, create=True) as store:
        created = demo.load_demo(store, if_missing=args.if_missing)
    print(f"Demo project {demo.DEMO_PROJECT!r} {'created' if created else 'already present'} "
          f"in {args.db}.")
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

    p = add("import", "import texts from a CSV file")
    p.add_argument("--csv", required=True)
    p.add_argument("--text-col", default="text")
    p.add_argument("--gold-col", default=None, help="optional gold-label column")
    p.add_argument("--id-col", default=None, help="optional id column (else ids from text)")
    p.add_argument("--encoding", default=None, help="file encoding (default: UTF-8)")
    p.add_argument("--delimiter", default=",")
    p.add_argument("--json", action="store_true", help="print the import report as JSON")

    p = add("export", "write the cleaned CSV")
    p.add_argument("--out", required=True)
    p.add_argument("--min-confidence", type=float, default=0.0)
    p.add_argument("--below", choices=["blank", "drop"], default="blank",
                   help="rows under --min-confidence: leave unlabeled or leave out")
    p.add_argument("--sources", default="human,student,teacher",
                   help="label sources in priority order")

    p = add("metrics", "print coverage, set sizes and accuracies")
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
