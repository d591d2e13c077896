"""Streamlit building blocks of the Explore page: picking the question, what may change, the answer."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import streamlit as st

from ui import constraints, explain, figures, links, live_slider, pipeline, recourse, solve, state, view


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


def _editor(dataset, what) -> tuple[str, object]:
    """The what-may-change editor's key and the table it is given. While an editor lives it keeps the
    user's edits itself, so its data stays the same (a new table under a cell being typed into is what
    a grid must never get); a new editor (the first, after another page, which drops the editor's
    state, or after the settings changed elsewhere) starts from the settings as they stand. When the
    distance flag changes under a live editor the costs of the new default come in, with the edits it
    was created with."""
    stored = st.session_state.get(state.EDITOR_BASE)
    generation = stored.generation if stored is not None else 0
    key = f"{state.editor_key(dataset)}_{generation}"
    alive = key in st.session_state
    if alive and stored is not None and stored.key == what.key:
        return key, stored.table
    default = constraints.default_table(dataset, what.key[1])
    table = constraints.apply_edits(default, stored.edits) if alive and stored is not None else what.table
    st.session_state[state.EDITOR_BASE] = state.EditorBase(key=what.key, table=table, generation=generation,
                                                           edits=constraints.table_edits(default, table))
    return key, table


def _restart_editor() -> None:
    """The settings changed without the editor (not by the user's hand): a new editor shows them."""
    stored = st.session_state[state.EDITOR_BASE]
    st.session_state[state.EDITOR_BASE] = state.EditorBase(key=None, table=None, edits=(),
                                                           generation=stored.generation + 1)
    st.rerun()


def what_may_change(dataset) -> None:
    """Pixels kept in [0, 1] for images; for tabular data an editable table of what may change, read
    from the data first."""
    if dataset.kind == "image":
        state.bind(st.toggle, "Keep pixels in [0, 1]", state.PIXEL_RANGE,
                   help="Counterfactual images stay valid images: projected Newton with the range as bounds; the "
                        "sparse adversarial question keeps the same range.")
        return
    state.bind(st.toggle, "Measure change in standard deviations (cost = 1/std²)", state.STANDARDISED,
               help="On: distances are in standard deviations of the data (l1: in median absolute deviations). "
                    "Off: in each column's own units.")
    st.caption("**From the data:** *whole numbers* is ticked where every value in the data is whole, *min* and *max* "
               "are the observed range (widen them, or clear a cell for no limit), categorical features keep their "
               "real levels. **Your choice:** per feature, *may change*, *may only rise*, *may only fall* (from the "
               "applicant's own value) or *locked*; a categorical feature that may change may take any other level. "
               "The slider and the two questions use the locks, directions and ranges; the exact recourse question "
               "also keeps whole numbers whole.")
    what = solve.what_may_change()
    key, base = _editor(dataset, what)
    edited = st.data_editor(
        base, hide_index=True, width="stretch", disabled=["feature", "kind"], key=key,
        column_config={
            "may change": st.column_config.SelectboxColumn(options=list(constraints.CHOICES), required=True,
                                                           help="May only rise / fall: from the applicant's value."),
            "whole numbers": st.column_config.CheckboxColumn(help="From the data: every value is whole. The exact "
                                                                  "recourse question keeps these whole."),
            "min": st.column_config.TextColumn(help="From the data: the observed minimum. Empty: no limit."),
            "max": st.column_config.TextColumn(help="From the data: the observed maximum. Empty: no limit."),
            "cost": st.column_config.TextColumn(help="Weight of a squared change (1/std² in standard deviations); "
                                                     "0 locks the feature.")})
    stored = st.session_state[state.EDITOR_BASE]
    if stored.returned is None or not edited.equals(stored.returned):  # the user edited (or a new editor)
        what = solve.set_constraint_table(edited)
        st.session_state[state.EDITOR_BASE] = replace(stored, returned=edited)
    elif not edited.equals(what.table):
        _restart_editor()
    if what.problems:
        st.warning("Not used as typed: " + "; ".join(what.problems) + ".", icon=":material/edit_off:")


def questions(q: solve.Question) -> None:
    """The question buttons; the answer is shown below, in place of the slider's, until the slider moves."""
    flip_col, alpha_col, ask_col = st.columns([2, 1, 2])
    flip_col.button("Smallest change that flips the decision", icon=":material/swap_horiz:", width="stretch",
                    on_click=_answer_question, args=("flip",))
    state.bind(alpha_col.number_input, "α", state.ALPHA, min_value=0.01, max_value=0.9999, step=0.05, format="%.4f",
               label_visibility="collapsed")
    ask_col.button(f"Closest with p({q.target_name}) ≥ α", icon=":material/target:", width="stretch",
                   on_click=lambda: _answer_question("alpha", st.session_state[state.ALPHA]))
    recourse_question(q)
    if st.session_state.get(state.QUESTION_ERROR):
        st.warning(st.session_state[state.QUESTION_ERROR])


def _answer_question(kind: str, alpha: float | None = None) -> None:
    """A question button: its answer, or (what may change leaves nothing to ask) the reason in words."""
    st.session_state[state.QUESTION_ERROR] = None
    try:
        solve.answer_question(kind, alpha)
    except ValueError as exc:
        st.session_state[state.ANSWER] = None
        st.session_state[state.QUESTION_ERROR] = f"The question was not asked: {exc}."


def recourse_question(q: solve.Question) -> None:
    """'Change at most [s] features' (pixels for images), the distance, p >= alpha, and the button."""
    image = q.dataset.kind == "image"
    key = recourse.budget_key(q.dataset)
    low, high = links.budget_range(q.dataset)
    st.session_state[key] = int(min(max(int(st.session_state[key]), low), high))
    if image:
        budget_col, alpha_col, ask_col = st.columns([1.3, 1, 2.7], vertical_alignment="bottom")
        state.bind(budget_col.number_input, "Change at most s pixels", key, min_value=low, max_value=high, step=1)
    else:
        budget_col, metric_col, alpha_col, ask_col = st.columns([1.3, 1.4, 1, 2.3], vertical_alignment="bottom")
        state.bind(budget_col.number_input, "Change at most s features", key, min_value=low, max_value=high, step=1)
        state.bind(metric_col.selectbox, "Distance", state.RECOURSE_METRIC, options=["l2", "l1"],
                   format_func=lambda m: {"l2": "squared (l2)", "l1": "absolute (l1)"}[m],
                   help="l2: √(Σ cost·Δ²), the page's own distance. l1: Σ |Δ| / MAD (Wachter et al.), a change of "
                        "level costing 1.")
    state.bind(alpha_col.toggle, "and p ≥ α", state.RECOURSE_ALPHA,
               help="Also ask p(target) ≥ α, with the α above (else: just predicted as the target).")
    budget = st.session_state[key]
    things = ("pixel" if budget == 1 else "pixels") if image else ("feature" if budget == 1 else "features")
    label = (f"Sparse adversarial: at most {budget} {things}" if image else
             f"Cheapest change of at most {budget} {things}")
    ask_col.button(label, key="recourse_ask", icon=":material/checklist:", width="stretch", on_click=_ask_recourse,
                   help="Exact: a mixed-integer programme (HiGHS), certified optimal or said not to be. "
                        + ("l1 distance; pixels stay in [0, 1] when the range is on." if image else
                           "Whole numbers stay whole, categories take real levels, ranges and locks hold."))


def _ask_recourse() -> None:
    st.session_state[state.QUESTION_ERROR] = None
    recourse.ask()


def asked_answer(q: solve.Question, what):
    """The question's answer kept for the current question, of either kind (the two questions' or
    recourse's), or None when the slider's answer is the page's."""
    if isinstance(st.session_state.get(state.ANSWER), state.RecourseAnswer):
        return recourse.current_answer(q, what)
    return solve.current_answer(what)


def answer_title(q: solve.Question, asked) -> str:
    if isinstance(asked, state.RecourseAnswer):
        return view.recourse_title(asked.key.budget, q.dataset.kind == "image", asked.key.alpha, q.target_name)
    return view.question_title(asked.question, q.target_name, asked.alpha)


def shown_answer(q: solve.Question, what, log_lam: float) -> view.Shown:
    """The question's answer if one is current, else the slider's solve at ``log_lam`` (only then
    does anything get solved)."""
    recourse.ask_pending()
    if isinstance(st.session_state.get(state.ANSWER), state.RecourseAnswer):
        kept = recourse.current_answer(q, what)
        if kept is not None:
            return view.from_recourse(kept, q.model, q.x0, what, q.dataset, q.target_name)
    else:
        answer = solve.current_answer(what)
        if answer is not None:
            return view.from_answer(answer, q.model, q.x0, what, q.target_name)
    try:
        result = solve.solve_current(10.0 ** log_lam, what)
    except ValueError as exc:  # what may change leaves nothing to solve
        return view.unsolvable(q.model, q.x0, q.target, what, str(exc))
    return view.from_slider(result, q.model, q.x0, what)


def answer(q: solve.Question, what, shown: view.Shown, live: bool = False) -> None:
    """The one answer on screen: metrics, constraints, the counterfactual, probabilities, downloads.
    ``live``: the live slider is on screen and draws the slider's metrics, image and probabilities."""
    if shown.source == "recourse":
        recourse_answer(q, what, shown)
        return
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
    if shown.grad_norm is None and not shown.is_answer:  # view.unsolvable
        st.warning(f"{shown.title}: {shown.message}.")
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
    table = counterfactual_view(q, what, shown)
    st.markdown(figures.probability_table_html(before, shown.proba, names, shown.target), unsafe_allow_html=True)
    downloads(q, shown, table)


def recourse_answer(q: solve.Question, what, shown: view.Shown) -> None:
    """The exact recourse answer: the card (question, certificate), metrics, the stakeholder's sentence
    and what was held fixed, the change table, probabilities, the front and the alternatives, downloads."""
    recourse.rerun_if_picked()
    answer = st.session_state[state.ANSWER]
    names, image = q.names, q.dataset.kind == "image"
    things = "pixels" if image else "features"
    with st.container(border=True):
        head, back = st.columns([3, 1])
        head.markdown(f"**{shown.title}**")
        back.button("Back to the slider", icon=":material/close:", width="stretch", on_click=solve.dismiss_answer)
        if not shown.success:
            hint = (f" The dashboard gives each question {recourse.TIME_LIMIT_S:g} s: fewer whole-number features, "
                    "narrower ranges or more locks make it faster." if "time limit" in shown.message else "")
            st.warning(f"{shown.title}: {shown.message}.{hint}")
            _front_and_alternatives(q, answer, shown)
            return
        certificate = view.certificate(shown)
        which = "" if answer.choice == 0 else (f" · alternative {answer.choice} (the cheapest has distance "
                                               f"{view.format_distance(answer.result.distance)})")
        n = len(shown.changed)
        st.markdown(f"{':material/verified:' if shown.optimal else ':material/warning:'} "
                    f"**{certificate[0].upper() + certificate[1:]}** · {n} {things[:-1] if n == 1 else things} changed"
                    f"{which} · {shown.n_iter} HiGHS solve{'' if shown.n_iter == 1 else 's'} in "
                    f"{shown.time_s * 1e3:.0f} ms")
    before = q.model.predict_proba(q.x0)
    p_target = float(shown.proba[shown.target])
    cols = st.columns(6)
    cols[0].metric(f"{things} changed", f"{len(shown.changed)}", help=f"at most {shown.budget} allowed")
    cols[1].metric(f"p({names[shown.target]})", view.format_proba(p_target),
                   f"{p_target - before[shown.target]:+.4f}")
    cols[2].metric("predicted", names[shown.predicted])
    cols[3].metric(view.distance_label(shown.unit), view.format_distance(shown.distance),
                   help=f"proved lower bound {view.format_distance(shown.bound)}")
    cols[4].metric("certified", "optimal" if shown.optimal else "no", help=view.certificate(shown))
    cols[5].metric("valid", "yes" if shown.meets else "no",
                   help="Predicted as the target by the model" + (", p ≥ α" if shown.alpha is not None else "")
                        + "; whole numbers whole, one level per group, locks and ranges held (verified by the solver).")
    reading = explain.recourse_reading(q.dataset, q.x0, shown.x, shown.changed, q.target_name,
                                       view.format_proba(float(before[shown.target])), view.format_proba(p_target),
                                       names[shown.predicted])
    if image:
        counterfactual_view(q, what, shown)
        st.info(markdown_safe(reading))
    else:
        st.info(markdown_safe(reading))
        choices = _choices(what)
        changed = [recourse.item_name(q.dataset, item) for item in shown.changed]
        held = explain.held_fixed(q.dataset, choices, changed)
        notes = [held] if held else []
        notes += list(answer.notes) + [f"Solver: {shown.message}."]
        st.caption(" ".join(notes))
        table = _recourse_table(q, what, shown, choices)
        st.dataframe(table, width="stretch", hide_index=True,
                     column_config={explain.size_column(shown.unit): st.column_config.NumberColumn(format="%.4g")})
    st.markdown(figures.probability_table_html(before, shown.proba, names, shown.target), unsafe_allow_html=True)
    _front_and_alternatives(q, answer, shown)
    downloads(q, shown, None if image else table)


def markdown_safe(text: str) -> str:
    """Text from the data (column and level names) shown as markdown without becoming markup: no maths
    ($), emphasis, code or links."""
    return re.sub(r"([\\$*`\[\]])", r"\\\1", text)


def _choices(what) -> dict:
    return dict(zip(what.table.feature, what.table["may change"])) if what.table is not None else {}


def _recourse_table(q: solve.Question, what, shown: view.Shown, choices: dict):
    table = explain.change_table(q.dataset, q.x0, shown.x, shown.cost, shown.unit, metric=shown.metric,
                                 choices=choices)
    return table.drop(columns="kind")


def _front_and_alternatives(q: solve.Question, answer, shown: view.Shown) -> None:
    """The front as a chart (a click on a point shows its answer; so does the selectbox beside it) and
    the alternatives as a small table with a selectbox."""
    front = answer.front
    budgets = [s for s, r in enumerate(front, start=1) if r is not None]
    if budgets:
        chart, side = st.columns([3, 1])
        figure = recourse.front_figure(front, q.dataset, shown.budget, view.distance_label(shown.unit), q.target_name)
        chart_key = f"recourse_front_{shown.budget}_{answer.key.metric}"
        chart.plotly_chart(figure, width="stretch", key=chart_key, on_select=lambda: _front_clicked(chart_key),
                           selection_mode="points", config={"displayModeBar": False})
        missing = [s for s, r in enumerate(front, start=1) if r is None]
        side.selectbox("Show the answer for", budgets, index=budgets.index(shown.budget) if shown.budget in budgets
                       else None, key=f"recourse_front_pick_{shown.budget}", placeholder="at most s …",
                       format_func=lambda s: f"at most {s} ({view.format_distance(front[s - 1].distance)})",
                       on_change=lambda: recourse.pick_budget(st.session_state[f"recourse_front_pick_{shown.budget}"]))
        side.caption("The exact trade-off: each point is the cheapest answer with at most s changes"
                     + (f"; none exists with {', '.join(map(str, missing))}" if missing else "")
                     + ". Click a point to show it.")
    alternatives = answer.result.alternatives
    if answer.result.success and alternatives:
        table, side = st.columns([3, 1])
        table.dataframe(recourse.alternatives_table(q.dataset, answer, q.target_name), hide_index=True, width="stretch")
        options = list(range(len(alternatives) + 1))
        side.selectbox("Show", options, index=answer.choice, key=f"recourse_alternative_{answer.choice}",
                       format_func=lambda i: "the cheapest" if i == 0 else f"alternative {i}",
                       on_change=lambda: recourse.pick_alternative(
                           st.session_state[f"recourse_alternative_{answer.choice}"]))
        side.caption("Each alternative is the cheapest answer that keeps at least one change of every earlier answer "
                     "as it was: exact diversity.")


def _front_clicked(chart_key: str) -> None:
    points = st.session_state[chart_key].selection.points
    if points:
        budget = points[0].get("customdata", points[0].get("x"))
        if isinstance(budget, (list, tuple)):
            budget = budget[0]
        recourse.pick_budget(int(budget))


def counterfactual_view(q: solve.Question, what, shown: view.Shown):
    """Images: source, counterfactual, difference. Tables: a one-sentence reading and the changes (the
    table shown is returned, for its download).

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
        table = table.drop(columns="kind")
        st.dataframe(table, width="stretch", hide_index=True,
                     column_config={explain.size_column(what.unit): st.column_config.NumberColumn(format="%.4g")})
        read = state.current_pipeline()
        if read is not None and shown.is_answer:  # the user's own pipeline judges the answer, as a row of its table
            check = state.check_with_pipeline(read, q.index, shown.x)
            line, agrees = pipeline.check_sentence(read, check, shown.predicted)
            (st.caption if agrees else st.warning)(line)
        return table
    return None


def downloads(q: solve.Question, shown: view.Shown, table=None) -> None:
    """CSV (and PNG for images) of the answer on screen, made only when clicked, without a rerun. For
    tables the CSV is ``table``, the change table on screen (one row per original column); the encoded
    features (one row per one-hot column) are a second download."""
    dataset, x0, x = q.dataset, q.x0, shown.x
    down_csv, down_other, _ = st.columns([1, 1, 3])
    what_name = {"slider": f"lam{shown.lam:.4g}" if shown.lam is not None else "slider", "flip": "smallest_flip",
                 "alpha": "closest_with_p", "recourse": f"recourse_at_most_{shown.budget}"}[shown.source]
    stem = f"counterfactual_{q.index}_to_{q.target_name}_{what_name}"
    read = state.current_pipeline()
    if read is not None:  # the source and answer rows in the pipeline's own input columns
        down_csv.download_button("Counterfactual (CSV)", lambda: pipeline.answer_csv(read, q.index, x),
                                 file_name=f"{stem}.csv", mime="text/csv", on_click="ignore",
                                 help="The source and answer rows in your pipeline's input columns.")
        if table is not None:
            down_other.download_button("Change table (CSV)", lambda: explain.table_csv(table),
                                       file_name=f"{stem}_changes.csv", mime="text/csv", on_click="ignore")
        return
    if table is None:
        down_csv.download_button("Counterfactual (CSV)", lambda: solve.counterfactual_csv(dataset.feature_names, x0, x),
                                 file_name=f"{stem}.csv", mime="text/csv", on_click="ignore")
        if dataset.kind == "image":
            down_other.download_button("Counterfactual (PNG)", lambda: solve.counterfactual_png(x, dataset.image_shape),
                                       file_name=f"{stem}.png", mime="image/png", on_click="ignore")
        return
    down_csv.download_button("Change table (CSV)", lambda: explain.table_csv(table), file_name=f"{stem}.csv",
                             mime="text/csv", on_click="ignore", help="The table on screen: one row per original column.")
    down_other.download_button("Encoded features (CSV)", lambda: solve.counterfactual_csv(dataset.feature_names, x0, x),
                               file_name=f"{stem}_encoded.csv", mime="text/csv", on_click="ignore",
                               help="Every model feature, one row per one-hot column.")


# -- the lambda slider, solved in the browser where it can be (issue 11) ----------------------------------
SLIDER_LABEL = "log₁₀ λ  (left: bolder change, right: closer to the source)"
ANSWER_BOX = "question_answer"  # the key of the container of a question's answer (the live slider hides it on a move)
SLIDER_BOX = "slider_answer"  # the key of the container of the slider's answer


def slider(q: solve.Question, what, asked) -> bool:
    """The lambda slider: the live one (ui/live_slider.py: it solves and draws at every move in the browser
    and tells the server on release) where the browser can run it, else Streamlit's. Moving either
    dismisses a question's answer (``asked``: the state.Answer or state.RecourseAnswer on screen, or
    None). Returns whether the live slider is on screen."""
    reason = ""
    if live_slider.can_run_in_browser():
        payload = live_payload(q, what)
        on_screen = None if asked is None else dict(title=answer_title(q, asked), box=f".st-key-{ANSWER_BOX}")
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
            target_colour=figures.colour(q.target), distance_label=view.distance_label(what.unit),
            lifts=live_slider.SHARED_LIFTS if state.shared_by_content() else None, **what.arguments)
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
    table = counterfactual_view(q, what, shown) if q.dataset.kind != "image" else None
    downloads(q, shown, table)
