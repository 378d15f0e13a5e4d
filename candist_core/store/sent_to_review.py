"""Texts sent to the review queue from the Student labels page, in ``project_settings``
under ``review_first``: they come first on the Review page of every reviewer of the project
until someone decides them. Kept in the database, not the browser session, so a reload, a
new tab or a restart of the server does not drop them (the session alone lost them, a walk
found)."""
from __future__ import annotations

import json

from .connection import Connection

KEY = "review_first"


class SentToReviewTable:
    """Reads and writes through ``TeamTable._setting`` / ``_set_setting``."""
    _c: Connection

    def sent_to_review_version(self, project_id: int) -> str:
        """Changes with every send (not when a sent text is decided): the Review page
        rebuilds its queue, sent texts first, when this changed."""
        return self._setting(project_id, KEY) or ""

    def _stored_sent(self, project_id: int) -> list[int]:
        value = self.sent_to_review_version(project_id)
        try:
            return [int(i) for i in json.loads(value)] if value else []
        except (ValueError, TypeError):
            return []

    def sent_to_review(self, project_id: int) -> list[int]:
        """The sent texts nobody has decided yet, in the order they were sent."""
        ids = self._stored_sent(project_id)
        if not ids:             # the usual case: no decided-texts read
            return []
        decided = set(self.decided_ids(project_id).tolist())
        return [i for i in ids if i not in decided]

    def send_to_review(self, project_id: int, sample_ids: list[int]) -> list[int]:
        """Queue ``sample_ids`` (in their order) after the texts sent earlier that are still
        undecided, first come first served: a text sent earlier never sinks behind later
        sends. Decided ones are not sent. Returns the ids sent."""
        with self._c.atomic():
            decided = set(self.decided_ids(project_id).tolist())
            sent = [int(i) for i in dict.fromkeys(sample_ids) if int(i) not in decided]
            earlier = [i for i in self._stored_sent(project_id) if i not in decided]
            kept = earlier + [i for i in sent if i not in earlier]
            self._set_setting(project_id, KEY, json.dumps(kept))
        return sent
