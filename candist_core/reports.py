"""Screen-shaped summaries over the core: what an export would hold, and the quality
estimate that goes with it (no Streamlit; the Export page shows them)."""
from __future__ import annotations

from collections import Counter

from .exporting import ExportOptions, ExportSummary, GoldCheck, gold_check, labelled_rows


def export_overview(store, project_id: int, *, options: ExportOptions = ExportOptions()
                    ) -> tuple[ExportSummary, Counter, GoldCheck | None]:
    """(rows and label sources, rows per label: '' for unlabeled, the file's labels against
    the gold labels: :func:`~candist_core.exporting.gold_check`, None without gold labels)
    of the export under its own label policy, from one read of the rows without the texts:
    a second read doubled the Export page's render at 100,000 texts (bench/RESULTS.md)."""
    summary, labels = ExportSummary(), Counter()

    def counted():     # streamed: a list of 100,000 rows took longer than the counting
        for item in labelled_rows(store.export_rows(project_id, texts=False), options,
                                  summary):
            labels[item[1]] += 1
            yield item
    if store.has_gold(project_id):
        return summary, labels, gold_check(counted())
    for _ in counted():
        pass
    return summary, labels, None


def quality_estimate(store, project_id: int) -> dict | None:
    """The latest finished student run's best epoch: ``gold_accuracy`` (vs imported gold
    labels), ``human_accuracy`` (held-out human decisions) and ``selection_score`` (the
    label-free estimate it was picked by), each None when unknown; None without a run."""
    run = store.latest_student_run(project_id)
    if run is None or not run.epochs:
        return None
    best = next((e for e in run.epochs if e.get("epoch") == run.best_epoch), run.epochs[-1])
    return {"run_id": run.id, "update": "update_of" in run.config,
            "run_epochs": len(run.epochs), "best_epoch": best.get("epoch"),
            "selection_n": best.get("selection_n"),
            "gold_accuracy": best.get("gold_accuracy"),
            "human_accuracy": best.get("human_accuracy"),
            "selection_score": best.get("selection_score"),
            "validation": best.get("validation")}
