"""What the user should do next, from the project's status counts (pure)."""


def next_step(counts: dict) -> str:
    if counts["samples"] == 0:
        return "import a file of texts (CSV, JSONL or Parquet) on the Data page."
    if counts["annotated"] == 0:
        return "annotate the texts with the teacher (candidate sets)."
    if counts["student_runs"] == 0:
        return "distill a student from the candidate sets."
    if counts["reviewed"] < counts["ambiguous"]:
        return (f"review the ambiguous texts ({counts['ambiguous'] - counts['reviewed']} "
                f"left), then distill again.")
    return "export the cleaned CSV."
