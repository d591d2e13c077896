"""The sidebar every page shows: what data and which model are loaded."""

import streamlit as st

import datasets
from ui import state


def render() -> None:
    dataset = st.session_state[state.DATASET]
    model = st.session_state[state.MODEL]
    trained = st.session_state[state.TRAINED]
    with st.sidebar:
        st.markdown("### Current question")
        st.markdown(f"**Data:** `{st.session_state[state.DATASET_NAME]}`  \n"
                    f"{dataset.n_samples:,} rows × {dataset.n_features:,} features, {dataset.n_classes} classes ({dataset.kind})")
        accuracy = f", test accuracy {trained.test_accuracy:.1%}" if trained is not None else ""
        st.markdown(f"**Model:** softmax, K = {model.n_classes}, {st.session_state[state.MODEL_LABEL]}{accuracy}")
        if st.session_state[state.DATASET_NAME] not in datasets.list_builtin():
            st.caption("Uploaded data stays in this session and cannot travel in a shared link.")
        st.caption("Minimises  λ/2 ‖x − x₀‖² − log p_k(x)  exactly with Newton's method in a (K−1)-dimensional subspace.")
