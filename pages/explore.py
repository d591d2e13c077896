"""Explore: pick an instance and a target class, drag lambda, see the closest counterfactual."""

import numpy as np
import streamlit as st

from ui import constraints, explain, figures, solve, state

dataset, model, index, target, x0 = solve.question()
names = [str(c) for c in model.classes]
st.title("Explore counterfactuals")

with st.expander("What am I looking at?"):
    st.markdown(
        "For the chosen instance **x₀** and target class **k**, the dashboard finds the unique minimiser of\n\n"
        "$$E(x) = \\frac{\\lambda}{2}\\lVert x - x_0\\rVert^2 - \\log p_k(x)$$\n\n"
        "A small λ buys a high probability of class k at the price of a larger change; a large λ keeps x close "
        "to x₀. The problem is strongly convex, so there is exactly one answer, computed by Newton's method to "
        "near machine precision (the gradient norm is shown). Each slider move re-solves from the previous answer."
    )

predicted = model.predict(dataset.X)
with st.container(border=True):
    left, middle, right = st.columns([2, 2, 1])
    true_filter = left.multiselect("True class", dataset.class_names, placeholder="any")
    predicted_filter = middle.multiselect("Predicted class", names, placeholder="any")
    only_wrong = right.toggle("Misclassified only")
    mask = np.ones(dataset.n_samples, dtype=bool)
    if true_filter:
        mask &= np.isin(dataset.y, [dataset.class_names.index(c) for c in true_filter])
    if predicted_filter:
        mask &= np.isin(predicted, [names.index(c) for c in predicted_filter])
    if only_wrong:
        mask &= predicted != dataset.y
    candidates = np.flatnonzero(mask)
    if candidates.size == 0:
        st.warning("No instance matches these filters; showing all instances.")
        candidates = np.arange(dataset.n_samples)

    def choose(new_index: int) -> None:
        st.session_state[state.INSTANCE] = int(new_index)
        st.session_state[state.TARGET] = state.default_target(model, dataset.X[int(new_index)])

    pick, shuffle, pick_target = st.columns([3, 1, 3])
    if index not in candidates:
        choose(candidates[0])
        dataset, model, index, target, x0 = solve.question()
    options = candidates.tolist()
    st.session_state["_widget_instance"] = index
    pick.selectbox(f"Instance ({len(options):,} match)", options, key="_widget_instance",
                   format_func=lambda i: f"#{i} · true {dataset.class_names[dataset.y[i]]} · predicted {names[predicted[i]]}",
                   on_change=lambda: choose(st.session_state["_widget_instance"]))
    shuffle.button("Random", icon=":material/casino:", width="stretch",
                   on_click=lambda: choose(np.random.default_rng().choice(candidates)))
    proba0 = model.predict_proba(x0)
    state.bind(pick_target.selectbox, "Target class", state.TARGET, options=list(range(model.n_classes)),
               format_func=lambda k: f"{names[k]}  (now p = {proba0[k]:.3f})")


with st.expander("What may change", expanded=False):
    if dataset.kind == "image":
        state.bind(st.toggle, "Keep pixels in [0, 1]", state.PIXEL_RANGE,
                   help="Counterfactual images stay valid images: projected Newton with the range as bounds.")
    else:
        state.bind(st.toggle, "Measure change in standard deviations (cost = 1/std²)", state.STANDARDISED)
        st.caption("Lock features that cannot change, weigh what is costly, bound ranges (e.g. age may only "
                   "rise: min = current age). Categorical features stay as they are unless 'level may change' "
                   "is ticked; the two questions below then try every other level, one feature at a time.")
        edited = st.data_editor(solve.constraint_table(), hide_index=True, width="stretch",
                                disabled=["feature", "kind"], key=f"constraints_{dataset.content_hash[:12]}",
                                column_config={"cost": st.column_config.NumberColumn(format="%.4g", min_value=0.0),
                                               "min": st.column_config.NumberColumn(format="%.4g"),
                                               "max": st.column_config.NumberColumn(format="%.4g")})
        solve.set_constraint_table(edited)

with st.container(border=True):
    flip_col, alpha_col, ask_col = st.columns([2, 1, 2])
    flip_col.button("Smallest change that flips the decision", icon=":material/swap_horiz:", width="stretch",
                    on_click=solve.answer_question, args=("flip",))
    alpha_col.number_input("α", min_value=0.01, max_value=0.9999, value=0.9, step=0.05, format="%.4f",
                           label_visibility="collapsed", key="alpha")
    ask_col.button(f"Closest with p({names[target]}) ≥ α", icon=":material/target:", width="stretch",
                   on_click=lambda: solve.answer_question("alpha", st.session_state["alpha"]))
    answer = solve.current_answer()
    if answer is not None:
        kind, asked_alpha, result, lam = answer
        title = "Smallest change that flips the decision" if kind == "flip" else f"Closest with p ≥ {asked_alpha:g}"
        if not result.success:
            st.warning(f"{title}: {result.message}")
        else:
            st.markdown(f"**{title}**")
            cols = st.columns(3)
            cols[0].metric(f"p({names[target]})", f"{result.proba[target]:.4f}")
            cols[1].metric("distance", f"{result.distance:.4g}")
            cols[2].metric("λ on the path", "—" if lam is None else f"{lam:.4g}")
            if dataset.kind == "image":
                st.plotly_chart(figures.image_triptych(x0, result.x, dataset.image_shape), width="stretch")
            else:
                st.info(explain.reading(dataset, x0, result.x, names[target], float(result.proba[target])))
                st.dataframe(explain.change_table(dataset, x0, result.x), width="stretch", hide_index=True)
            arguments = solve.constraint_arguments(for_questions=True)
            active = constraints.describe_active(dataset, x0, result.x, arguments, result.at_lower, result.at_upper)
            changes = "; ".join(f"{a} → {b}" for _, a, b in result.level_changes)
            st.caption(f"{result.message}. Active constraints: {active}."
                       + (f" Level changed: {changes}." if changes else "")
                       + " The slider below moved to the λ whose answer reaches the same probability.")


@st.fragment
def counterfactual_panel():
    dataset, model, index, target, x0 = solve.question()
    low, high = state.LOG_LAM_RANGE
    log_lam = state.bind(st.slider, "log₁₀ λ  (left: bolder change, right: closer to the source)", state.LOG_LAM,
                         min_value=low, max_value=high, step=state.LOG_LAM_STEP, format="%.2f")
    lam = 10.0 ** log_lam
    result = solve.solve_current(lam)
    state.share_link_params()
    arguments = solve.constraint_arguments()
    before, after = model.predict_proba(x0), result.proba
    distance = float(np.linalg.norm(result.x - x0))
    cols = st.columns(6)
    cols[0].metric("λ", f"{lam:.4g}")
    cols[1].metric(f"p({names[target]})", f"{after[target]:.4f}", f"{after[target] - before[target]:+.4f}")
    cols[2].metric("predicted", names[int(np.argmax(after))])
    cols[3].metric("distance ‖x − x₀‖", f"{distance:.4g}")
    cols[4].metric("Newton iterations", result.n_iter, help=f"{result.time_s * 1e3:.2f} ms")
    cols[5].metric("‖grad E‖", f"{result.grad_norm:.1e}", help=result.message)
    if not result.success:
        st.warning(result.message)
    if arguments:
        st.caption("Active constraints: " + constraints.describe_active(dataset, x0, result.x, arguments,
                                                                         result.at_lower, result.at_upper) + ".")

    if dataset.kind == "image":
        st.plotly_chart(figures.image_triptych(x0, result.x, dataset.image_shape), width="stretch")
    else:
        target_name = names[target]
        st.info(explain.reading(dataset, x0, result.x, target_name, float(after[target])))
        st.dataframe(explain.change_table(dataset, x0, result.x), width="stretch", hide_index=True)
    st.plotly_chart(figures.probability_bars(before, after, names, target), width="stretch")

    down_csv, down_png, _ = st.columns([1, 1, 3])
    down_csv.download_button("Counterfactual (CSV)", solve.counterfactual_csv(dataset.feature_names, x0, result.x),
                             file_name=f"counterfactual_{index}_to_{names[target]}.csv", mime="text/csv")
    if dataset.kind == "image":
        down_png.download_button("Counterfactual (PNG)", solve.counterfactual_png(result.x, dataset.image_shape),
                                 file_name=f"counterfactual_{index}_to_{names[target]}.png", mime="image/png")


counterfactual_panel()
if st.session_state[state.DATASET_NAME].startswith("upload:"):
    st.caption("This question cannot be shared as a link: uploaded data stays in your session.")
else:
    st.caption("The address bar holds this question (dataset, instance, target, λ): copy it to share.")
