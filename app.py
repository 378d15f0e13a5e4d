"""CanDist Studio: the Streamlit entry point. Wiring only; pages call candist_core.

The pages live in ``views/``: a folder named ``pages/`` next to this file would switch
Streamlit to its legacy multipage mode, where a page URL runs the page file without this
script (no navigation, no page config).

Before any page runs: the app refuses to serve beyond loopback without sign-in (unless
``CANDIST_ALLOW_OPEN=1``), and with sign-in configured a visitor who is not signed in
gets the sign-in screen and nothing else. The navigation lists the pages the visitor's
role may open; each page checks again (``views.common.require_page``).
"""
import os

import streamlit as st

from candist_core.access import ALLOW_OPEN_ENV, serving_problem
from views.common import get_store, navigation_pages, sign_in_configured, sign_in_gate, warn_once

st.set_page_config(page_title="CanDist Studio", layout="wide")
allow_open = os.environ.get(ALLOW_OPEN_ENV) == "1"
problem = serving_problem(st.get_option("server.address"),
                          sign_in_configured=sign_in_configured(), allow_open=allow_open)
if problem:
    warn_once(problem)
    if not allow_open:
        st.error(problem, icon=":material/lock:")
        st.stop()
    st.warning(problem, icon=":material/warning:")
store = get_store()
sign_in_gate(store)
st.navigation(navigation_pages(store, [
    st.Page("views/home.py", title="Home", default=True),
    st.Page("views/labels.py", title="Labels"),
    st.Page("views/data.py", title="Data"),
    st.Page("views/annotate.py", title="Annotate"),
    st.Page("views/review.py", title="Review"),
    st.Page("views/agreement.py", title="Agreement"),
    st.Page("views/distill.py", title="Distill"),
    st.Page("views/predictions.py", title="Student labels"),
    st.Page("views/export.py", title="Export"),
    st.Page("views/predict.py", title="Label new files"),
])).run()
