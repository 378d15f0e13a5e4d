"""The review queue of a project as rows: what the Review page serves next, for the
``queue`` command and for benchmarks that drive the loop from outside the app."""
from __future__ import annotations

from .review import DEFAULT_SIGNAL, rank_ambiguous


def review_queue(store, project_id: int, *, n: int, signal: str = DEFAULT_SIGNAL,
                 label: str | None = None) -> list[dict]:
    """The next ``n`` undecided texts in ``signal`` order: ``sample_id``, ``id`` (the
    export's id), ``text`` and the latest teacher run's ``candidates``."""
    signals = store.review_signals(project_id)
    order = rank_ambiguous(signals, signal=signal, label=label)[:n]
    ids = [int(signals["sample_id"][i]) for i in order]
    samples = {s.id: s for s in store.samples(project_id, ids=ids)}
    return [{"sample_id": sid, "id": samples[sid].ext_id, "text": samples[sid].text,
             "candidates": signals["candidates"][i]} for sid, i in zip(ids, order.tolist())]
