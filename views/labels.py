"""Labels: edit names and descriptions, import or download labels.json."""
import json

import pandas as pd
import streamlit as st

from candist_core.keys import KEY_POOL, RESERVED_KEYS, assign_keys, check_keys
from candist_core.records import CandistError
from candist_core.schema import build_schema, check_replacement, read_schema, schema_to_dict
from candist_core.tables import (CHAR_PX, PAD_PX, PAGE_WIDTH, WRAP_ROW_PX, fitted_widths,
                                  listed, wrapped_height)
from views.common import require_project

store, project = require_project("labels")
st.title("Labels")
if flash := st.session_state.pop("labels_flash", None):
    # A toast: a banner at the top was out of sight under the table and pushed it down.
    st.toast(flash, icon=":material/check_circle:")
schema = store.label_schema(project.id)
in_use = store.labels_in_use(project.id)

keys = assign_keys(schema.names, store.label_keys(project.id))
task = st.text_area("Task description (shown to the LLM)", value=schema.task)
table = pd.DataFrame({"name": [l.name for l in schema.labels],
                      "description": [l.description for l in schema.labels],
                      # upper case, as the Review page's buttons show them
                      "key": [(keys[l.name] or "").upper() for l in schema.labels]})
# Descriptions wrap, in rows tall enough for three lines, when one line cannot hold them
# (a one-line cell cut them off mid-sentence at 1280 px). Widths by the headers shown; the
# editor's own first column (tick a row to delete it) takes about 40 px.
widths = fitted_widths({"name": table["name"], "description": table["description"],
                        "review key": table["key"]}, flex="description",
                       wraps=("description",), whole=("name",), total=PAGE_WIDTH - 40)
one_line = max((len(d) for d in table["description"]), default=0) * CHAR_PX + PAD_PX
edited = st.data_editor(table, num_rows="dynamic", width="stretch", key="labels_editor",
                        row_height=WRAP_ROW_PX if one_line > widths["description"] else None,
                        height=wrapped_height(len(table) + 1, visible=10)   # + the new row
                        if one_line > widths["description"] else "auto",
                        column_config={
                            "name": st.column_config.TextColumn(width=widths["name"]),
                            "description": st.column_config.TextColumn(
                                width=widths["description"],
                                help="What the label means; the teacher ranks the labels "
                                     "against 'name: description'."),
                            "key": st.column_config.TextColumn(
                                "review key", max_chars=1, width=widths["review key"],
                                help="The keyboard key that picks this label on the Review "
                                     "page, the same on every text: a digit 1-9 or a letter "
                                     "(s and u are skip and undo). Empty: the next free "
                                     "key.")})
actions = listed([f"{key} for {what}" for key, what in RESERVED_KEYS.items()])
st.caption(f"Review keys: on the Review page one key press picks a label, the same key on "
           f"every text. {len(KEY_POOL)} keys can be given to labels: the digits 1-9, then "
           f"the letters a-z except s and u; the page keeps {actions}. Labels beyond "
           f"{len(KEY_POOL)} get no key and are picked by typing their name.")
confirm = False
if in_use:
    st.caption(f"{len(in_use)} label(s) are used by annotations, decisions or predictions.")
    confirm = st.checkbox("I understand that renaming or removing a used label leaves the "
                          "existing annotations pointing at the old name (a migration).")
if st.button("Save labels", type="primary"):
    try:
        rows = edited.fillna("").to_dict("records")
        new = build_schema(task, [{"name": r["name"], "description": r["description"]}
                                  for r in rows if str(r["name"]).strip()])
        check_replacement(in_use, new, confirmed=confirm)
        chosen = check_keys({str(r["name"]).strip(): str(r.get("key") or "")
                             for r in rows if str(r["name"]).strip()})
        unchanged = (schema_to_dict(new) == schema_to_dict(schema)
                     and chosen == store.label_keys(project.id))
        if not unchanged:
            store.replace_labels(project.id, new)
            store.set_label_keys(project.id, chosen)
    except CandistError as exc:
        st.error(str(exc))
    else:
        # Redrawn from the database: a new label shows the review key it was given.
        st.session_state.pop("labels_editor", None)
        st.session_state["labels_flash"] = (
            "Nothing to save: the labels are as saved." if unchanged
            else f"Saved {len(new.labels)} labels.")
        st.rerun()

col1, col2 = st.columns(2)
col1.download_button("Download labels.json", json.dumps(schema_to_dict(schema), indent=2),
                     file_name=f"{project.name}-labels.json", mime="application/json")
upload = col2.file_uploader("Replace from a labels.json", type=["json"])
if upload is not None and col2.button("Import labels.json"):
    try:
        new = read_schema(upload.getvalue(), name=upload.name)
        check_replacement(in_use, new, confirmed=confirm)
        store.replace_labels(project.id, new)
        st.success(f"Imported {len(new.labels)} labels.")
    except CandistError as exc:
        st.error(str(exc))
