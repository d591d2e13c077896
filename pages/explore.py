"""Explore: pick an instance and a target class, drag lambda, see the closest counterfactual."""

import numpy as np
import streamlit as st

from ui import constraints, figures, panels, solve, state

dataset, model, _, _, _ = solve.question()
names = [str(c) for c in model.classes]
st.title("Explore counterfactuals")

with st.expander("What am I looking at?"):
    st.markdown(
        "For the chosen instance **x₀** and target class **k**, the dashboard finds the unique minimiser of\n\n"
        "$$E(x) = \\frac{\\lambda}{2}\\lVert x - x_0\\rVert^2 - \\log p_k(x)$$\n\n"
        "A small λ buys a high probability of class k at the price of a larger change; a large λ keeps x close "
        "to x₀. The problem is strongly convex, so there is exactly one answer, computed by Newton's method to "
        "near machine precision (the gradient norm is shown). Each slider move re-solves from the previous answer. "
        "The two questions answer *the smallest change that flips the decision* and *the smallest change that "
        "reaches probability α* exactly, within what may change."
    )

with st.container(border=True):
    panels.instance_picker(dataset, model, names)
with st.expander("What may change"):
    panels.what_may_change(dataset)
dataset, model, index, target, x0 = solve.question()
with st.container(border=True):
    panels.questions(dataset, x0, names, target)


@st.fragment
def counterfactual_panel():
    dataset, model, index, target, x0 = solve.question()
    low, high = state.LOG_LAM_RANGE
    log_lam = state.bind(st.slider, "log₁₀ λ  (left: bolder change, right: closer to the source)", state.LOG_LAM,
                         min_value=low, max_value=high, step=state.LOG_LAM_STEP, format="%.2f")
    lam = 10.0 ** log_lam
    arguments = solve.constraint_arguments()
    result = solve.solve_current(lam, arguments)
    state.share_link_params()
    before, after = model.predict_proba(x0), result.proba
    cols = st.columns(6)
    cols[0].metric("λ", f"{lam:.4g}")
    cols[1].metric(f"p({names[target]})", f"{after[target]:.4f}", f"{after[target] - before[target]:+.4f}")
    cols[2].metric("predicted", names[int(np.argmax(after))])
    cols[3].metric("distance ‖x − x₀‖", f"{np.linalg.norm(result.x - x0):.4g}")
    cols[4].metric("Newton iterations", result.n_iter, help=f"{result.time_s * 1e3:.2f} ms")
    cols[5].metric("‖grad E‖", f"{result.grad_norm:.1e}", help=result.message)
    if not result.success:
        st.warning(result.message)
    if arguments:
        active = constraints.describe_active(dataset, x0, result.x, arguments, result.at_lower, result.at_upper)
        st.caption(f"Active constraints: {active}.")
    panels.counterfactual_view(dataset, x0, result.x, names[target], float(after[target]))
    st.markdown(figures.probability_table_html(before, after, names, target), unsafe_allow_html=True)
    panels.downloads(dataset, index, x0, result.x, names[target])


counterfactual_panel()
if st.session_state[state.DATASET_NAME].startswith("upload:"):
    st.caption("This question cannot be shared as a link: uploaded data stays in your session.")
else:
    st.caption("The address bar holds this question (dataset, instance, target, λ): copy it to share.")
