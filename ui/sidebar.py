"""The frame every page shows: the sidebar (what data and which model are loaded) and what a shared
link asked for that could not be done."""

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
        elif trained is None:
            st.caption("A loaded model file stays in this session and cannot travel in a shared link.")
        st.caption("Minimises  λ/2 ‖x − x₀‖² − log p_k(x)  exactly with Newton's method in a (K−1)-dimensional subspace.")


def _dismiss_link_warnings() -> None:
    st.session_state[state.LINK_WARNINGS] = ()


def link_warnings() -> None:
    """What the link this session was opened with asked for and could not get, until dismissed."""
    warnings = st.session_state.get(state.LINK_WARNINGS)
    if not warnings:
        return
    box, close = st.columns([8, 1])
    box.warning("This link could not be followed in full: " + "; ".join(warnings) + ".", icon=":material/link_off:")
    close.button("Dismiss", key=state.DISMISS_LINK_WARNINGS, on_click=_dismiss_link_warnings)
