"""2-D teaching view: decision regions, the path x*(lambda), and the counterfactual moving with the slider."""

import numpy as np
import streamlit as st

from ui import figures, solve, state

st.title("2-D teaching view")
with st.expander("What am I looking at?"):
    st.markdown(
        "With two features the whole story fits in one picture. The background shows which class the softmax "
        "model predicts everywhere in the plane; its boundaries are straight lines. The black curve is the set "
        "of exact minimisers x*(λ) of  λ/2 ‖x − x₀‖² − log p_k(x)  for every λ: it starts at the source x₀ "
        "(large λ) and bends into the target's region (small λ). The star is the minimiser for the slider's λ."
    )

dataset = st.session_state[state.DATASET]
if dataset.n_features != 2:
    st.info(f"This view needs data with exactly 2 features; `{st.session_state[state.DATASET_NAME]}` has "
            f"{dataset.n_features}. The built-in toy has two.")
    if st.button("Switch to the 2-feature toy data"):
        state.set_dataset("toy-2d", state.builtin_dataset("toy-2d"))
        st.rerun()
    st.stop()

dataset, model, index, target, x0 = solve.question()
names = [str(c) for c in model.classes]
left, right = st.columns(2)
state.bind(left.number_input, "Source instance (row)", state.INSTANCE, min_value=0, max_value=dataset.n_samples - 1, step=1)
state.bind(right.selectbox, "Target class", state.TARGET, options=list(range(model.n_classes)),
           format_func=lambda k: names[k])


@st.fragment
def plane():
    dataset, model, index, target, x0 = solve.question()
    low, high = state.LOG_LAM_RANGE
    log_lam = state.bind(st.slider, "log₁₀ λ", state.LOG_LAM, min_value=low, max_value=high,
                         step=state.LOG_LAM_STEP, format="%.2f")
    arguments = solve.constraint_arguments()
    result = solve.solve_current(10.0 ** log_lam, arguments)
    path = solve.current_path(arguments)
    st.plotly_chart(figures.decision_regions(model, dataset.X, dataset.y, names, x0, path.X, result.x),
                    width="stretch")
    a, b, c = st.columns(3)
    a.metric(f"p({names[target]})", f"{result.proba[target]:.4f}")
    b.metric("distance", f"{np.linalg.norm(result.x - x0):.4g}")
    c.metric("counterfactual", f"({result.x[0]:.3f}, {result.x[1]:.3f})")


plane()
