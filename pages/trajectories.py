"""Trajectories: the whole lambda path of the current question, and how the current solve converged."""

import numpy as np
import streamlit as st

from solver import invert
from ui import figures, solve, state, view

state.run_through_app()

q = solve.question()
dataset, model, index, target, x0, names = q.dataset, q.model, q.index, q.target, q.x0, list(q.names)
lam = 10.0 ** st.session_state[state.LOG_LAM]
st.title("Trajectories along λ")
st.caption(f"Instance #{index} → target **{names[target]}**, current λ = {lam:.4g} (set on the Explore page).")

with st.expander("What am I looking at?"):
    st.markdown(
        "Each λ has its own exact minimiser x*(λ) of  λ/2 ‖x − x₀‖² − log p_k(x).  Left: every class's "
        "probability at x*(λ); middle: how far x*(λ) is from x₀ (the problem's own distance, with the costs of "
        "what may change); right: the trade-off between the two — "
        "both fall as λ grows. The dashed line and the cross mark the current λ. Below: how Newton's method "
        "converged from x₀ at the current λ (E − E* and the gradient norm on a log scale, per iteration and "
        "per millisecond): the last iterations double the number of correct digits."
    )

what = solve.what_may_change()
arguments = what.arguments
path = solve.current_path(what)
st.plotly_chart(figures.path_figures(path.lams, path.proba, solve.path_distance(path, x0, what), names, target, lam,
                                     distance_label=view.distance_label(what.unit)), width="stretch")
st.caption(f"{len(path.lams)} values of λ from {path.lams[0]:.0e} to {path.lams[-1]:.0e}, each warm-started from "
           f"the previous one: {int(path.n_iter.sum())} Newton iterations in {path.time_s * 1e3:.1f} ms in all.")

if dataset.kind == "image":
    picks = np.linspace(0, len(path.lams) - 1, 9).round().astype(int)
    labels = [f"λ={path.lams[i]:.2g}<br>p={path.proba[i, target]:.2f}" for i in picks]
    st.plotly_chart(figures.image_strip(path.X[picks], dataset.image_shape, labels), width="stretch")

st.subheader("Convergence of the current solve")
if arguments.get("bounds") is not None:
    labels = {"projected Newton": "newton", "L-BFGS-B (scipy)": "lbfgs"}
    note = "With feature ranges the gradient shown is the projected gradient."
else:
    labels = {"reduced Newton": "newton", "full-space Newton (paper)": "newton-full"}
    note = ""
runs = {label: invert(model, x0, target, lam, method=method, record=True, tol=1e-12, **arguments)
        for label, method in labels.items()}
best = min(r.energy for r in runs.values())
st.plotly_chart(figures.convergence_figure({label: r.history for label, r in runs.items()}, best), width="stretch")
st.caption(" ".join(f"{label}: {r.n_iter} iterations, {r.time_s * 1e3:.2f} ms." for label, r in runs.items())
           + " Both from x₀, stopped at ‖grad‖ ≤ 1e-12 or the round-off floor; E* is the lower final energy. " + note)
