"""The choices a person made last on a page (Distill's epochs, Export's policy), per
project, in ``project_settings`` under ``page:<name>``: a reload, a new tab or a restart of
the server shows them again (the session alone forgot them on reload, a walk found)."""
from __future__ import annotations

import json

from .connection import Connection


class PageSettingsTable:
    """Reads and writes through ``TeamTable._setting`` / ``_set_setting``."""
    _c: Connection

    def page_settings(self, project_id: int, page: str) -> dict:
        """The page's kept choices ({} when none, or when what is stored is unreadable)."""
        value = self._setting(project_id, f"page:{page}")
        try:
            kept = json.loads(value) if value else {}
        except ValueError:
            return {}
        return kept if isinstance(kept, dict) else {}

    def set_page_settings(self, project_id: int, page: str, settings: dict) -> None:
        """Keep ``settings`` (JSON values: numbers, strings, booleans, lists)."""
        self._set_setting(project_id, f"page:{page}", json.dumps(settings, sort_keys=True))
