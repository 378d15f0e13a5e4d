"""``label_keys``: the reviewer's fixed key of each label of a project (see
:mod:`candist_core.keys` for the defaults and the checks)."""
from __future__ import annotations

from .connection import Connection


class LabelKeysTable:
    """``label_keys``: only the keys a user set; the others come from the default pool."""

    _c: Connection

    def label_keys(self, project_id: int) -> dict[str, str]:
        """label -> the key set for it (labels without a saved key are absent)."""
        return dict(self._c.tuples("SELECT label, key FROM label_keys WHERE project_id = ?",
                                   [project_id]))

    def set_label_keys(self, project_id: int, keys: dict[str, str]) -> None:
        """Replace the project's saved keys (checked by ``keys.check_keys`` first)."""
        with self._c.atomic() as db:
            db["label_keys"].delete_where("project_id = ?", [project_id])
            db["label_keys"].insert_all({"project_id": project_id, "label": label, "key": key}
                                        for label, key in keys.items())
