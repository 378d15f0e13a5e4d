"""What the user should do next, from the project's status counts (pure)."""

from .audit import GATE_MIN_AUDIT, SUGGESTED_AUDIT

# Step -> the page (file under views/) where it is done.
PAGES = {"import": "data", "annotate": "annotate", "audit": "review", "distill": "distill",
         "review": "review", "export": "export"}


def ambiguous_left(counts: dict) -> int:
    """Ambiguous texts with no human decision yet (decisions on texts with a single
    candidate, or on audit texts, do not count)."""
    return counts["ambiguous"] - counts["ambiguous_reviewed"]


def _clear_reviewed(counts: dict) -> str:
    """Why "Reviewed" is more than the ambiguous texts decided: a walk read 20 ambiguous and
    9 reviewed, expected 11 left, and found 15."""
    clear = counts.get("reviewed", 0) - counts.get("ambiguous_reviewed", 0)
    if clear <= 0:
        return ""
    return (f"; {clear} of the {counts['reviewed']} reviewed had one candidate and do not "
            f"count here")


def next_action(counts: dict) -> str:
    """One of :data:`PAGES`: the first step the project still lacks."""
    if counts["samples"] == 0:
        return "import"
    if counts["annotated"] == 0:
        return "annotate"
    if not counts.get("with_gold") and counts.get("audited", 0) < GATE_MIN_AUDIT:
        return "audit"     # without gold labels, an audit is the only measure of quality
    if counts["student_runs"] == 0:
        return "distill"
    if ambiguous_left(counts):
        return "review"
    return "export"


def next_step(counts: dict) -> str:
    return {
        "import": "import a file of texts (CSV, JSONL or Parquet) on the Data page.",
        "annotate": "annotate the texts with the teacher (candidate sets).",
        "audit": (f"audit ~{SUGGESTED_AUDIT} randomly drawn texts (Review page, Audit mode; "
                  f"{counts.get('audited', 0)} so far): labelled blind, they tell how right "
                  f"the teacher, the student and the export are, with 95% intervals. Without "
                  f"gold labels nothing else can."),
        "distill": "distill a student from the candidate sets.",
        "review": (f"review: {ambiguous_left(counts)} of the {counts['ambiguous']} ambiguous "
                   f"texts (more than one candidate label) have no decision yet"
                   + _clear_reviewed(counts) + " (the Review queue puts the texts most "
                   "worth a look first; the student is updated as you go)."),
        "export": "export the cleaned CSV.",
    }[next_action(counts)]
