"""2-D teaching view: decision regions, the path x*(lambda), and the counterfactual moving with the slider."""

import streamlit as st

from ui import figures, panels, solve, state, view

state.run_through_app()

st.title("2-D teaching view")
with st.expander("What am I looking at?"):
    st.markdown(
        "With two features the whole story fits in one picture. The coloured regions are where the softmax model "
        "predicts each class; their boundaries are straight lines, drawn exactly. The dotted lines are contours of "
        "the target's probability. The black curve is the set of exact minimisers x*(λ) of  "
        "λ/2 ‖x − x₀‖² − log p_k(x)  for every λ: it starts at the source x₀ (large λ) and bends into the target's "
        "region (small λ). The star is the minimiser for the slider's λ. *Smallest change that flips the decision* "
        "shows the closest point of the target's region instead (a diamond, joined to x₀); the axes have the same "
        "scale in the problem's distance, so that segment meets the boundary at a right angle."
    )

dataset = st.session_state[state.DATASET]
if dataset.n_features != 2:
    st.info(f"This view needs data with exactly 2 features; `{st.session_state[state.DATASET_NAME]}` has "
            f"{dataset.n_features}. The built-in toy has two.")
    if st.button("Switch to the 2-feature toy data"):
        state.set_dataset("toy-2d", state.builtin_dataset("toy-2d"))
        st.rerun()
    st.stop()

q = solve.question()
left, middle, right = st.columns([2, 2, 3])
state.bind(left.number_input, "Source instance (row)", state.INSTANCE, on_change=state.choose_instance, min_value=0,
           max_value=dataset.n_samples - 1, step=1)
state.bind(middle.selectbox, "Target class", state.TARGET, on_change=state.choose_target,
           options=list(range(q.model.n_classes)), format_func=lambda k: q.names[k])
right.button("Smallest change that flips the decision", icon=":material/swap_horiz:", width="stretch",
             on_click=solve.answer_question, args=("flip",))


@st.fragment
def plane():
    q = solve.question()
    low, high = state.LOG_LAM_RANGE
    log_lam = state.bind(st.slider, "log₁₀ λ", state.LOG_LAM, on_change=solve.dismiss_answer, min_value=low,
                         max_value=high, step=state.LOG_LAM_STEP, format="%.2f")
    what = solve.what_may_change()
    shown = panels.shown_answer(q, what, log_lam)
    path = solve.current_path(what)
    if shown.is_answer and not shown.success:
        st.warning(f"{shown.title}: {shown.message}")
    label = "smallest flip" if shown.source == "flip" else "counterfactual"
    st.plotly_chart(figures.decision_regions(q.model, q.dataset.X, q.dataset.y, list(q.names), q.x0, path.X, shown.x,
                                             target=q.target, cost=what.cost, shown_label=label,
                                             flip=shown.source == "flip"), width="stretch")
    cols = st.columns(5)
    cols[0].metric("λ", shown.lam_text, help=shown.lam_note or None)
    cols[1].metric(f"p({q.target_name})", view.format_proba(float(shown.proba[q.target])))
    cols[2].metric("predicted", q.names[shown.predicted])
    cols[3].metric(view.distance_label(shown.unit), view.format_distance(shown.distance))
    cols[4].metric(label, f"({shown.x[0]:.3g}, {shown.x[1]:.3g})", help=f"({shown.x[0]:.6g}, {shown.x[1]:.6g})")
    if shown.is_answer:
        head, back = st.columns([3, 1])
        head.caption(f"**{shown.title}.** Solver: {shown.message}. {shown.lam_note}")
        back.button("Back to the slider", icon=":material/close:", width="stretch",
                    on_click=solve.dismiss_answer)


plane()
