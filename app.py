"""CanDist Studio: the Streamlit entry point. Wiring only; pages call candist_core.

The pages live in ``views/``: a folder named ``pages/`` next to this file would switch
Streamlit to its legacy multipage mode, where a page URL runs the page file without this
script (no navigation, no page config).
"""
import streamlit as st

st.set_page_config(page_title="CanDist Studio", layout="wide")
st.navigation([
    st.Page("views/home.py", title="Home", default=True),
    st.Page("views/labels.py", title="Labels"),
    st.Page("views/data.py", title="Data"),
    st.Page("views/annotate.py", title="Annotate"),
    st.Page("views/review.py", title="Review"),
    st.Page("views/distill.py", title="Distill"),
    st.Page("views/predictions.py", title="Predictions"),
    st.Page("views/export.py", title="Export"),
    st.Page("views/predict.py", title="Predict"),
]).run()
