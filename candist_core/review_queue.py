"""The review queue of a project as rows: what the Review page serves next, for the
``queue`` command and for benchmarks that drive the loop from outside the app."""
from __future__ import annotations

import numpy as np

from .review import DEFAULT_SIGNAL, rank_ambiguous


def review_queue(store, project_id: int, *, n: int, signal: str = DEFAULT_SIGNAL,
                 label: str | None = None) -> list[dict]:
    """The next ``n`` undecided texts in ``signal`` order: ``sample_id``, ``id`` (the
    export's id), ``text`` and the latest teacher run's ``candidates``."""
    signals = store.review_signals(project_id)
    order = rank_ambiguous(signals, signal=signal, label=label)
    if sent_ids := store.sent_to_review(project_id):
        # As on the Review page: the texts sent from Student labels first.
        at = {int(sid): i for i, sid in enumerate(signals["sample_id"].tolist())}
        sent = [at[i] for i in sent_ids if i in at]
        order = np.concatenate([np.array(sent, dtype=np.int64),
                                order[~np.isin(order, sent)]])
    order = order[:n]
    ids = [int(signals["sample_id"][i]) for i in order]
    samples = {s.id: s for s in store.samples(project_id, ids=ids)}
    return [{"sample_id": sid, "id": samples[sid].ext_id, "text": samples[sid].text,
             "candidates": signals["candidates"][i]} for sid, i in zip(ids, order.tolist())]


def send_to_review(store, project_id: int, sample_ids: list[int], *,
                   who: str | None) -> list[int]:
    """Put ``sample_ids`` first in every reviewer's queue until decided (kept in the
    database: a reload or a new tab keeps them) and let go of the text ``who`` holds open,
    so that their next Review shows the sent ones first. Returns the ids sent (those not
    decided already)."""
    sent = store.send_to_review(project_id, sample_ids)
    if sent and who:
        store.release_leases(project_id, who)
    return sent
