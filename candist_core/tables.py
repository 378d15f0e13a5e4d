"""Column widths for the pages' tables, so every column is in sight at 1280x800 (pure).

Streamlit sizes a column by its first rows and lets the table scroll sideways: at 1280 px
with the sidebar open the last columns of a wide table fell out of sight, and a fixed
60 px cut ids such as "demo-001". Here every column but one gets the width its header and
values need (capped), and the flexible column (the text) gets what is left.
"""
from __future__ import annotations

from typing import Iterable

PAGE_WIDTH = 800    # px a table has in the wide layout at 1280 px, sidebar open
CHAR_PX = 7         # one character of the table font (Source Sans at 14 px: ~6.7), rounded up
PAD_PX = 20         # a cell's padding (16 px) and a margin
MIN_PX, MAX_PX = 60, 190
MIN_FLEX = 140


def _shown(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def content_width(header: str, values: Iterable) -> int:
    """Pixels that show the header and the longest value whole (within MIN_PX..MAX_PX)."""
    longest = max([len(header)] + [len(_shown(v)) for v in values])
    return max(MIN_PX, min(MAX_PX, longest * CHAR_PX + PAD_PX))


def _word_width(header: str, values: Iterable) -> int:
    """Pixels for the header and the longest word of any value: a wrapped cell breaks
    between words, and a label cut mid-word ("account_ac / cess") reads as two."""
    words = [w for v in values for w in _shown(v).replace(",", " ").split()]
    longest = max([len(header)] + [len(w) for w in words])
    return max(MIN_PX, longest * CHAR_PX + PAD_PX)


def fitted_widths(columns: dict[str, Iterable], *, flex: str = "text",
                  fixed: dict[str, int] | None = None, total: int = PAGE_WIDTH,
                  min_flex: int = MIN_FLEX, whole: tuple[str, ...] = ("id",),
                  wraps: tuple[str, ...] = ()) -> dict[str, int]:
    """Column -> width in px for ``columns`` (name -> values shown). ``fixed``: widths
    that stay (checkboxes, progress bars). When the columns need more than ``total``
    less ``min_flex`` (what the flexible column keeps at least), the widest are narrowed
    first, never below their header, the ``whole`` columns (ids: a cut "demo-00" tells
    rows apart no more) not at all, and the ``wraps`` columns (in rows tall enough to wrap)
    never below their longest word."""
    fixed = fixed or {}
    values = {c: list(v) for c, v in columns.items()}
    widths = {c: fixed.get(c) or content_width(c, v) for c, v in values.items() if c != flex}
    floor = {c: fixed.get(c) or (widths[c] if c in whole else
                                 min(widths[c], _word_width(c, values[c])) if c in wraps else
                                 max(MIN_PX, len(c) * CHAR_PX + PAD_PX)) for c in widths}
    budget = total - (min_flex if flex in columns else 0)
    while sum(widths.values()) > budget:
        wide = max((c for c in widths if widths[c] > floor[c]), key=widths.get, default=None)
        if wide is None:
            break
        widths[wide] = max(floor[wide], widths[wide] - CHAR_PX)
    if flex in columns:
        widths[flex] = max(min_flex, total - sum(widths.values()))
    return widths


def shown_columns(columns: dict[str, Iterable], *, keep: tuple[str, ...] = ("id", "text")
                  ) -> list[str]:
    """The columns worth a place: ``keep`` and those with at least one value to show (before
    annotation a project's label, candidates and decision columns are all empty)."""
    return [c for c, values in columns.items()
            if c in keep or any(_shown(v).strip() for v in values)]


# Streamlit wraps a cell's text only in rows taller than 4rem (64 px); 72 px rows show three
# lines of a text instead of its first 30 characters.
WRAP_ROW_PX = 72
HEADER_PX = 38


def wrapped_height(rows: int, *, visible: int = 8) -> int:
    """Pixels for a table of ``rows`` wrapped rows: all of them up to ``visible`` (the rest
    scroll inside the table), so a short table leaves no empty band."""
    return HEADER_PX + WRAP_ROW_PX * max(1, min(rows, visible)) + 2


def listed(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c': column names in a sentence."""
    names = [str(n) for n in names]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
