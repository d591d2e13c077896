"""Solver race: every method on the current problem, convergence plotted together."""

import pandas as pd
import streamlit as st

from solver import invert
from ui import figures, solve, state

state.run_through_app()

q = solve.question()
dataset, model, index, target, x0, names = q.dataset, q.model, q.index, q.target, q.x0, list(q.names)
lam = 10.0 ** st.session_state[state.LOG_LAM]
st.title("Solver race")
st.caption(f"Instance #{index} → target **{names[target]}**, λ = {lam:.4g}; every method starts at x₀ and solves "
           "the problem without locks, costs or ranges (the seed paper's setting).")

with st.expander("What am I looking at?"):
    st.markdown(
        "The same strongly convex problem  min λ/2 ‖x − x₀‖² − log p_k(x)  solved by the seed paper's methods: "
        "Newton in the (K−1)-dimensional subspace (ours), the paper's full-space Newton, Polak–Ribière conjugate "
        "gradient, L-BFGS (memory 4), BFGS (a dense D × D matrix, so only for small D) and gradient descent. All "
        "stop at ‖grad E‖ ≤ tol or after the iteration limit. Times are measured here, in this run."
    )

left, right = st.columns(2)
tol = left.select_slider("Tolerance ‖grad E‖ ≤", options=[1e-4, 1e-6, 1e-8, 1e-10, 1e-12], value=1e-8,
                         format_func=lambda v: f"{v:.0e}")
max_iter = right.select_slider("Iteration limit (first-order methods)", options=[100, 300, 1000, 3000], value=1000)
methods = {"reduced Newton": "newton", "full-space Newton": "newton-full", "CG (Polak–Ribière)": "cg",
           "L-BFGS (m=4)": "lbfgs", "gradient descent": "gd"}
if dataset.n_features <= 2000:
    methods["BFGS"] = "bfgs"
else:
    st.caption(f"BFGS is left out: its dense {dataset.n_features} × {dataset.n_features} matrix is too large here.")

results = {label: invert(model, x0, target, lam, method=method, tol=tol, max_iter=max_iter, record=True)
           for label, method in methods.items()}
best = min(r.energy for r in results.values())
st.plotly_chart(figures.convergence_figure({label: r.history for label, r in results.items()}, best),
                width="stretch")
table = pd.DataFrame([
    {"method": label, "iterations": r.n_iter, "time (ms)": round(r.time_s * 1e3, 3),
     "final ‖grad E‖": f"{r.grad_norm:.2e}", "E − E*": f"{max(r.energy - best, 0):.1e}", "converged": r.success,
     "message": r.message}
    for label, r in results.items()
])
st.dataframe(table, width="stretch", hide_index=True)
