"""The reference for browser_latency.py: a fragment that only echoes a slider."""

import streamlit as st


@st.fragment
def echo():
    value = st.slider("log₁₀ λ", min_value=-4.0, max_value=2.0, value=-1.0, step=0.02, format="%.2f")
    st.metric("λ", f"{10 ** value:.4g}")


st.title("Bare slider")
echo()
