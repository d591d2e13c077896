"""Inverse classification dashboard: the router and the frame shared by every page."""

import streamlit as st

from ui import sidebar, state

st.set_page_config(page_title="Inverse classification", page_icon="🔁", layout="wide")
state.init_session()
sidebar.render()

pages = [
    st.Page("pages/explore.py", title="Explore", icon="🔍", default=True),
    st.Page("pages/trajectories.py", title="Trajectories", icon="📈"),
    st.Page("pages/race.py", title="Solver race", icon="🏁"),
    st.Page("pages/teaching.py", title="2-D teaching view", icon="🎓"),
    st.Page("pages/data.py", title="Data", icon="🗂️"),
    st.Page("pages/model.py", title="Model", icon="🧮"),
]
st.navigation(pages).run()
