"""Explore: pick an instance and a target class, drag lambda, see the closest counterfactual."""

import streamlit as st

from ui import live_slider, panels, solve, state

state.run_through_app()

st.title("Explore counterfactuals")

with st.expander("What am I looking at?"):
    st.markdown(
        "For the chosen instance **x₀** and target class **k**, the dashboard finds the unique minimiser of\n\n"
        "$$E(x) = \\frac{\\lambda}{2}\\lVert x - x_0\\rVert^2 - \\log p_k(x)$$\n\n"
        "A small λ buys a high probability of class k at the price of a larger change; a large λ keeps x close "
        "to x₀. The problem is strongly convex, so there is exactly one answer, computed by Newton's method to "
        "near machine precision (the gradient norm is shown). Each slider move re-solves from the previous answer. "
        "The two questions answer *the smallest change that flips the decision* and *the smallest change that "
        "reaches probability α* exactly, within what may change; the page then shows that answer (its own λ, "
        "when it has one) until the slider moves. Distances are the problem's own, "
        "√(Σⱼ costⱼ (xⱼ − x₀ⱼ)²): in standard deviations when change is measured in standard deviations.\n\n"
        "*Cheapest change of at most s features* is the question a stakeholder asks: the exact cheapest change "
        "of at most s features (a categorical feature counts once) in whole units where the data is whole, between "
        "real categories, within the ranges and locks of *what may change* — a mixed-integer programme solved to a "
        "certified optimum (or said not to be). The chart beside it is the exact trade-off for s = 1 … 5; the "
        "alternatives are the next-cheapest answers that each keep a different feature as it was. For images it is "
        "the sparse adversarial example: at most s pixels, in l1 distance."
    )

with st.container(border=True):
    panels.instance_picker(solve.question())
with st.expander("What may change"):
    panels.what_may_change(st.session_state[state.DATASET])
with st.container(border=True):
    panels.questions(solve.question())


@st.fragment
def counterfactual_panel():
    q = solve.question()
    what = solve.what_may_change()
    live = panels.slider(q, what, panels.asked_answer(q, what))
    shown = panels.shown_answer(q, what, st.session_state[state.LOG_LAM])
    state.write_link(state.link_params(what, shown.source if shown.is_answer else None, shown.alpha))
    with st.container(key=panels.ANSWER_BOX if shown.is_answer else panels.SLIDER_BOX):
        panels.answer(q, what, shown, live=live)


live_slider.forget_sent(state.LIVE_SLIDER)  # a whole-page run may rebuild the live slider: send its arrays again
counterfactual_panel()
limits = state.link_limits()
st.caption(limits or "The address bar holds this whole question (dataset, instance, target, λ, the question asked, "
                     "what may change and the model's training settings): copy it to share.")
