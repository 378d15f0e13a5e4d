"""CanDist Studio: the Streamlit entry point. Wiring only; pages call candist_core."""
import streamlit as st

st.set_page_config(page_title="CanDist Studio", layout="wide")
st.navigation([
    st.Page("pages/home.py", title="Home", default=True),
]).run()
