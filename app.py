"""CanDist Studio: the Streamlit entry point. Wiring only; pages call candist_core."""
import streamlit as st

st.set_page_config(page_title="CanDist Studio", layout="wide")
st.navigation([
    st.Page("pages/home.py", title="Home", default=True),
    st.Page("pages/labels.py", title="Labels"),
    st.Page("pages/data.py", title="Data"),
    st.Page("pages/annotate.py", title="Annotate"),
    st.Page("pages/review.py", title="Review"),
    st.Page("pages/distill.py", title="Distill"),
    st.Page("pages/predictions.py", title="Predictions"),
    st.Page("pages/export.py", title="Export"),
]).run()
