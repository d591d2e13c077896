"""Streamlit building blocks of the Explore page: picking the question, what may change, the answer."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import constraints, explain, figures, live_slider, solve, state, view


def instance_picker(q: solve.Question) -> None:
    """Filters (true class, predicted class, misclassified), the instance, a random pick, the target."""
    dataset, model, names = q.dataset, q.model, list(q.names)
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
    if st.session_state[state.INSTANCE] not in candidates:
        state.choose_instance(candidates[0])
    pick, shuffle, pick_target = st.columns([3, 1, 3])
    widget = state.widget_key(state.INSTANCE)
    if st.session_state.get(widget) != st.session_state[state.INSTANCE]:
        st.session_state[widget] = st.session_state[state.INSTANCE]
    pick.selectbox(f"Instance ({candidates.size:,} match)", candidates.tolist(), key=widget,
                   format_func=lambda i: f"#{i} · true {dataset.class_names[dataset.y[i]]} · predicted {names[predicted[i]]}",
                   on_change=lambda: state.choose_instance(st.session_state[widget]))
    shuffle.button("Random", icon=":material/casino:", width="stretch",
                   on_click=lambda: state.choose_instance(np.random.default_rng().choice(candidates)))
    proba0 = model.predict_proba(dataset.X[st.session_state[state.INSTANCE]])
    state.bind(pick_target.selectbox, "Target class", state.TARGET, on_change=state.choose_target,
               options=list(range(model.n_classes)), format_func=lambda k: f"{names[k]}  (now p = {proba0[k]:.3f})")
    if st.session_state.get(state.INSTANCE_NOTE):
        st.caption(st.session_state[state.INSTANCE_NOTE])


def what_may_change(dataset) -> None:
    """Pixels kept in [0, 1] for images; an editable lock/cost/range table for tabular data."""
    if dataset.kind == "image":
        state.bind(st.toggle, "Keep pixels in [0, 1]", state.PIXEL_RANGE,
                   help="Counterfactual images stay valid images: projected Newton with the range as bounds.")
        return
    state.bind(st.toggle, "Measure change in standard deviations (cost = 1/std²)", state.STANDARDISED,
               help="On: distances are in standard deviations of the data. Off: in each column's own units.")
    st.caption("Lock features that cannot change, weigh what is costly, bound ranges (e.g. age may only rise: "
               "min = current age). Categorical features stay as they are unless 'level may change' is ticked; "
               "the two questions above the slider then try every other level, one feature at a time.")
    edited = st.data_editor(solve.what_may_change().table, hide_index=True, width="stretch",
                            disabled=["feature", "kind"], key=state.editor_key(dataset),
                            column_config={"cost": st.column_config.NumberColumn(format="%.4g", min_value=0.0),
                                           "min": st.column_config.NumberColumn(format="%.4g"),
                                           "max": st.column_config.NumberColumn(format="%.4g")})
    solve.set_constraint_table(edited)


def questions(q: solve.Question) -> None:
    """The two buttons; the answer is shown below, in place of the slider's, until the slider moves."""
    flip_col, alpha_col, ask_col = st.columns([2, 1, 2])
    flip_col.button("Smallest change that flips the decision", icon=":material/swap_horiz:", width="stretch",
                    on_click=solve.answer_question, args=("flip",))
    state.bind(alpha_col.number_input, "α", state.ALPHA, min_value=0.01, max_value=0.9999, step=0.05, format="%.4f",
               label_visibility="collapsed")
    ask_col.button(f"Closest with p({q.target_name}) ≥ α", icon=":material/target:", width="stretch",
                   on_click=lambda: solve.answer_question("alpha", st.session_state[state.ALPHA]))


def shown_answer(q: solve.Question, what, log_lam: float) -> view.Shown:
    """The question's answer if one is current, else the slider's solve at ``log_lam`` (only then
    does anything get solved)."""
    answer = solve.current_answer(what)
    if answer is not None:
        return view.from_answer(answer, q.model, q.x0, what, q.target_name)
    return view.from_slider(solve.solve_current(10.0 ** log_lam, what), q.model, q.x0, what)


def answer(q: solve.Question, what, shown: view.Shown, live: bool = False) -> None:
    """The one answer on screen: metrics, constraints, the counterfactual, probabilities, downloads.
    ``live``: the live slider is on screen and draws the slider's metrics, image and probabilities."""
    if live and not shown.is_answer:
        live_answer(q, what, shown)
        return
    names = q.names
    if shown.is_answer:
        head, back = st.columns([3, 1])
        head.markdown(f"**{shown.title}**")
        back.button("Back to the slider", icon=":material/close:", width="stretch",
                    on_click=solve.dismiss_answer)
        if not shown.success:
            st.warning(f"{shown.title}: {shown.message}")
            return
    before = q.model.predict_proba(q.x0)
    p_target = float(shown.proba[shown.target])
    cols = st.columns(6)
    cols[0].metric("λ", shown.lam_text, help=shown.lam_note or None)
    cols[1].metric(f"p({names[shown.target]})", view.format_proba(p_target),
                   f"{p_target - before[shown.target]:+.4f}")
    cols[2].metric("predicted", names[shown.predicted])
    cols[3].metric(view.distance_label(shown.unit), view.format_distance(shown.distance))
    if shown.is_answer:
        cols[4].metric("iterations", shown.n_iter, help=f"{shown.time_s * 1e3:.2f} ms")
        cols[5].metric("valid", "yes" if shown.meets else "no",
                       help="The target is the predicted class (flip) / p ≥ α holds (α). " + shown.message)
    else:
        cols[4].metric("Newton iterations", shown.n_iter, help=f"{shown.time_s * 1e3:.2f} ms")
        cols[5].metric("‖grad E‖", f"{shown.grad_norm:.1e}", help=shown.message)
        if not shown.success:
            st.warning(shown.message)
    notes = []
    if shown.is_answer:
        notes.append(f"Solver: {shown.message}.")
        if shown.lam is not None:
            notes.append(f"Exact λ = {shown.lam:.6g}; the slider is at the nearest step. Moving it shows the slider's "
                         "own answer.")
        if shown.lam_note:
            notes.append(shown.lam_note)
    if shown.arguments or shown.is_answer:
        active = constraints.describe_active(q.dataset, q.x0, shown.x, shown.arguments, shown.at_lower,
                                             shown.at_upper)
        notes.append(f"Active constraints: {active}.")
    if shown.level_changes:
        notes.append("Level changed: " + "; ".join(f"{a} → {b}" for _, a, b in shown.level_changes) + ".")
    if notes:
        st.caption(" ".join(notes))
    counterfactual_view(q, what, shown)
    st.markdown(figures.probability_table_html(before, shown.proba, names, shown.target), unsafe_allow_html=True)
    downloads(q, shown)


def counterfactual_view(q: solve.Question, what, shown: view.Shown) -> None:
    """Images: source, counterfactual, difference. Tables: a one-sentence reading and the changes.

    Images are sent as PNGs, not charts: the browser shows them at once, which keeps a slider move fast."""
    dataset = q.dataset
    if dataset.kind == "image":
        pixel = max(1, 224 // max(dataset.image_shape))  # about 224 screen pixels a side
        (source, counterfactual, difference), bound = figures.triptych_images(q.x0, shown.x, dataset.image_shape, pixel)
        st.image(figures.side_by_side([source, counterfactual, difference]),
                 caption=f"source · counterfactual (predicted {q.names[shown.predicted]}) · difference: red added, "
                         f"blue removed (±{bound:.3g} at full colour)")
    else:
        table = explain.change_table(dataset, q.x0, shown.x, what.cost, what.unit)
        st.info(explain.reading(table, q.target_name, view.format_proba(float(shown.proba[shown.target])),
                                q.names[shown.predicted]))
        st.dataframe(table.drop(columns="kind"), width="stretch", hide_index=True,
                     column_config={explain.size_column(what.unit): st.column_config.NumberColumn(format="%.4g")})


def downloads(q: solve.Question, shown: view.Shown) -> None:
    """CSV (and PNG for images) of the answer on screen, made only when clicked, without a rerun."""
    dataset, x0, x = q.dataset, q.x0, shown.x
    down_csv, down_png, _ = st.columns([1, 1, 3])
    what = {"slider": f"lam{shown.lam:.4g}" if shown.lam is not None else "slider", "flip": "smallest_flip",
            "alpha": "closest_with_p"}[shown.source]
    stem = f"counterfactual_{q.index}_to_{q.target_name}_{what}"
    down_csv.download_button("Counterfactual (CSV)", lambda: solve.counterfactual_csv(dataset.feature_names, x0, x),
                             file_name=f"{stem}.csv", mime="text/csv", on_click="ignore")
    if dataset.kind == "image":
        down_png.download_button("Counterfactual (PNG)", lambda: solve.counterfactual_png(x, dataset.image_shape),
                                 file_name=f"{stem}.png", mime="image/png", on_click="ignore")


# -- the lambda slider, solved in the browser where it can be (issue 11) ----------------------------------
SLIDER_LABEL = "log₁₀ λ  (left: bolder change, right: closer to the source)"
ANSWER_BOX = "question_answer"  # the key of the container of a question's answer (the live slider hides it on a move)
SLIDER_BOX = "slider_answer"  # the key of the container of the slider's answer


def slider(q: solve.Question, what, asked) -> bool:
    """The lambda slider: the live one (ui/live_slider.py: it solves and draws at every move in the browser
    and tells the server on release) where the browser can run it, else Streamlit's. Moving either
    dismisses a question's answer (``asked``: the state.Answer on screen, or None). Returns whether the
    live slider is on screen."""
    reason = ""
    if live_slider.can_run_in_browser():
        payload = live_payload(q, what)
        on_screen = None if asked is None else dict(
            title=view.question_title(asked.question, q.target_name, asked.alpha), box=f".st-key-{ANSWER_BOX}")
        if live_slider.render(payload, state.LOG_LAM, log_lam_range=state.LOG_LAM_RANGE, key=state.LIVE_SLIDER,
                              answer=on_screen, on_change=solve.dismiss_answer):
            return True
        reason = payload.reason
    low, high = state.LOG_LAM_RANGE
    state.bind(st.slider, SLIDER_LABEL, state.LOG_LAM, on_change=solve.dismiss_answer, min_value=low, max_value=high,
               step=state.LOG_LAM_STEP, format="%.2f")
    if reason:
        st.caption(reason[0].upper() + reason[1:] + ".")
    return False


def live_payload(q: solve.Question, what) -> live_slider.LivePayload:
    """The question as the live slider ships it: built once per question (model, data, instance, target,
    what may change) and kept for the session, so that a slider move builds nothing."""
    key = (solve.problem_key(q, what), q.target, q.names)
    cached = st.session_state.get(state.LIVE_PAYLOAD)
    if cached is None or cached.key != key:
        dataset = q.dataset
        payload = live_slider.build_payload(
            q.model, q.x0, q.target, st.session_state[state.LOG_LAM], log_lam_range=state.LOG_LAM_RANGE,
            log_lam_step=state.LOG_LAM_STEP, class_names=q.names, label=SLIDER_LABEL,
            image_shape=dataset.image_shape if dataset.kind == "image" else None,
            target_colour=figures.colour(q.target), distance_label=view.distance_label(what.unit), **what.arguments)
        cached = live_slider.CachedPayload(key=key, payload=payload)
        st.session_state[state.LIVE_PAYLOAD] = cached
    return cached.payload


def live_answer(q: solve.Question, what, shown: view.Shown) -> None:
    """Under the live slider, the rest of the slider's answer, from the server's own solve at the lambda
    released: that solve in one line (the same λ, p, predicted class and distance the live slider shows,
    to the digits shown), the active constraints, the reading and the changes (tables), downloads."""
    names = q.names
    line = (f"The server's solve at λ = {shown.lam_text}: p({names[shown.target]}) = "
            f"{view.format_proba(float(shown.proba[shown.target]))}, predicted {names[shown.predicted]}, "
            f"{view.distance_label(shown.unit)} = {view.format_distance(shown.distance)} ({shown.n_iter} Newton "
            f"iterations, {shown.time_s * 1e3:.1f} ms, ‖grad E‖ = {shown.grad_norm:.1e}).")
    if shown.arguments:
        active = constraints.describe_active(q.dataset, q.x0, shown.x, shown.arguments, shown.at_lower,
                                             shown.at_upper)
        line += f" Active constraints: {active}."
    st.caption(line)
    if not shown.success:
        st.warning(shown.message)
    if q.dataset.kind != "image":
        counterfactual_view(q, what, shown)
    downloads(q, shown)
