"""Screen-shaped summaries over the core: what an export would hold, and the quality
estimate that goes with it (no Streamlit; the Export page shows them)."""
from __future__ import annotations

from collections import Counter

from .exporting import ExportOptions, ExportSummary, labelled_rows


def export_counts(store, project_id: int, *, options: ExportOptions = ExportOptions()
                  ) -> tuple[ExportSummary, Counter]:
    """(rows and label sources, rows per label: '' for unlabeled) of the export, one pass
    under the export's own label policy, without reading the texts."""
    summary = ExportSummary()
    labels = Counter(label for _, label, _, _ in labelled_rows(
        store.export_rows(project_id, texts=False), options, summary))
    return summary, labels


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
