"""Audit: one question asked of every row of the dataset; who has recourse, at what cost, by group."""

import streamlit as st

from ui import audit_page, panels, solve, state

state.run_through_app()

st.title("Audit recourse over the whole dataset")
with st.expander("What am I looking at?"):
    st.markdown(audit_page.EXPLAINER)

dataset, model = st.session_state[state.DATASET], st.session_state[state.MODEL]
audit_page.init(dataset, model)
with st.container(border=True):
    request = audit_page.question_controls(dataset, model)
with st.expander("What may change (the same settings as Explore: edits here apply there too)"):
    panels.what_may_change(dataset)
what = solve.settings()
st.caption(f"**What may change:** {audit_page.settings_summary(dataset, what)}")
kept = audit_page.run_section(dataset, model, what, request)
if kept is not None:
    audit_page.results(dataset, model, kept)
