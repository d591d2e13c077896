"""Streamlit building blocks of the Explore page: picking the question, what may change, the answers."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import constraints, explain, figures, solve, state


def instance_picker(dataset, model, names) -> None:
    """Filters (true class, predicted class, misclassified), the instance, a random pick, the target."""
    predicted = model.predict(dataset.X)
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

    def choose(new_index) -> None:
        st.session_state[state.INSTANCE] = int(new_index)
        st.session_state[state.TARGET] = state.default_target(model, dataset.X[int(new_index)])

    if st.session_state[state.INSTANCE] not in candidates:
        choose(candidates[0])
    pick, shuffle, pick_target = st.columns([3, 1, 3])
    st.session_state["_widget_instance"] = st.session_state[state.INSTANCE]
    pick.selectbox(f"Instance ({candidates.size:,} match)", candidates.tolist(), key="_widget_instance",
                   format_func=lambda i: f"#{i} · true {dataset.class_names[dataset.y[i]]} · predicted {names[predicted[i]]}",
                   on_change=lambda: choose(st.session_state["_widget_instance"]))
    shuffle.button("Random", icon=":material/casino:", width="stretch",
                   on_click=lambda: choose(np.random.default_rng().choice(candidates)))
    proba0 = model.predict_proba(dataset.X[st.session_state[state.INSTANCE]])
    state.bind(pick_target.selectbox, "Target class", state.TARGET, options=list(range(model.n_classes)),
               format_func=lambda k: f"{names[k]}  (now p = {proba0[k]:.3f})")


def what_may_change(dataset) -> None:
    """Pixels kept in [0, 1] for images; an editable lock/cost/range table for tabular data."""
    if dataset.kind == "image":
        state.bind(st.toggle, "Keep pixels in [0, 1]", state.PIXEL_RANGE,
                   help="Counterfactual images stay valid images: projected Newton with the range as bounds.")
        return
    state.bind(st.toggle, "Measure change in standard deviations (cost = 1/std²)", state.STANDARDISED)
    st.caption("Lock features that cannot change, weigh what is costly, bound ranges (e.g. age may only rise: "
               "min = current age). Categorical features stay as they are unless 'level may change' is ticked; "
               "the two questions below then try every other level, one feature at a time.")
    edited = st.data_editor(solve.constraint_table(), hide_index=True, width="stretch", disabled=["feature", "kind"],
                            key=f"constraints_{dataset.content_hash[:12]}",
                            column_config={"cost": st.column_config.NumberColumn(format="%.4g", min_value=0.0),
                                           "min": st.column_config.NumberColumn(format="%.4g"),
                                           "max": st.column_config.NumberColumn(format="%.4g")})
    solve.set_constraint_table(edited)


def counterfactual_view(dataset, x0, x, target_name: str, p_target: float) -> None:
    """Images: source, counterfactual, difference. Tables: a one-sentence reading and the changes.

    Images are sent as PNGs, not charts: the browser shows them at once, which keeps a slider move fast."""
    if dataset.kind == "image":
        pixel = max(1, 224 // max(dataset.image_shape))  # about 224 screen pixels a side
        (source, counterfactual, difference), bound = figures.triptych_images(x0, x, dataset.image_shape, pixel)
        st.image(figures.side_by_side([source, counterfactual, difference]),
                 caption=f"source · counterfactual ({target_name}) · difference: red added, blue removed "
                         f"(±{bound:.3g} at full colour)")
    else:
        st.info(explain.reading(dataset, x0, x, target_name, p_target))
        st.dataframe(explain.change_table(dataset, x0, x), width="stretch", hide_index=True)


def questions(dataset, x0, names, target) -> None:
    """The two buttons and, once asked, the exact answer with its active constraints."""
    flip_col, alpha_col, ask_col = st.columns([2, 1, 2])
    flip_col.button("Smallest change that flips the decision", icon=":material/swap_horiz:", width="stretch",
                    on_click=solve.answer_question, args=("flip",))
    alpha_col.number_input("α", min_value=0.01, max_value=0.9999, value=0.9, step=0.05, format="%.4f",
                           label_visibility="collapsed", key="alpha")
    ask_col.button(f"Closest with p({names[target]}) ≥ α", icon=":material/target:", width="stretch",
                   on_click=lambda: solve.answer_question("alpha", st.session_state["alpha"]))
    answer = solve.current_answer()
    if answer is None:
        return
    kind, asked_alpha, result, lam = answer
    title = "Smallest change that flips the decision" if kind == "flip" else f"Closest with p ≥ {asked_alpha:g}"
    if not result.success:
        st.warning(f"{title}: {result.message}")
        return
    st.markdown(f"**{title}**")
    cols = st.columns(3)
    cols[0].metric(f"p({names[target]})", f"{result.proba[target]:.4f}")
    cols[1].metric("distance", f"{result.distance:.4g}")
    cols[2].metric("λ on the path", "—" if lam is None else f"{lam:.4g}")
    counterfactual_view(dataset, x0, result.x, names[target], float(result.proba[target]))
    arguments = solve.constraint_arguments(for_questions=True)
    active = constraints.describe_active(dataset, x0, result.x, arguments, result.at_lower, result.at_upper)
    changes = "; ".join(f"{a} → {b}" for _, a, b in result.level_changes)
    st.caption(f"{result.message}. Active constraints: {active}." + (f" Level changed: {changes}." if changes else "")
               + " The slider below moved to the λ whose answer reaches the same probability.")


def downloads(dataset, index, x0, x, target_name: str) -> None:
    """CSV (and PNG for images), made only when clicked, without a rerun."""
    down_csv, down_png, _ = st.columns([1, 1, 3])
    stem = f"counterfactual_{index}_to_{target_name}"
    down_csv.download_button("Counterfactual (CSV)", lambda: solve.counterfactual_csv(dataset.feature_names, x0, x),
                             file_name=f"{stem}.csv", mime="text/csv", on_click="ignore")
    if dataset.kind == "image":
        down_png.download_button("Counterfactual (PNG)", lambda: solve.counterfactual_png(x, dataset.image_shape),
                                 file_name=f"{stem}.png", mime="image/png", on_click="ignore")
