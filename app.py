"""Inverse classification dashboard: the router and the frame shared by every page."""

import streamlit as st

from ui import sidebar, solve, state

st.set_page_config(page_title="Inverse classification", page_icon=":material/swap_horiz:", layout="wide")
navigation = st.navigation([
    st.Page("pages/explore.py", title="Explore", icon=":material/search:", default=True),
    st.Page("pages/trajectories.py", title="Trajectories", icon=":material/show_chart:"),
    st.Page("pages/audit.py", title="Audit", icon=":material/fact_check:"),
    st.Page("pages/race.py", title="Solver race", icon=":material/sports_score:"),
    st.Page("pages/teaching.py", title="2-D teaching view", icon=":material/school:"),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/model.py", title="Model", icon=":material/model_training:"),
])
state.init_session()
solve.ask_pending_question()
sidebar.render()
sidebar.link_warnings()
navigation.run()
