"""Projected Newton for feature ranges ``l <= x <= u`` (MATH.md section 6; Bertsekas 1982).

Ranges break the subspace property, so this works in the full (free-feature) space. Each iteration
splits the features into an *active* set (at a bound, with the gradient pushing outwards) and a free
set; the free part takes the Newton step of section 3 restricted to the free features,

    d_F = -(lam I + B_F^T C^T C B_F)^{-1} g_F = -(g_F - (C B_F)^T (lam I_K + C G_F C^T)^{-1} C B_F g_F) / lam,

the active part a scaled gradient step, and the line search of :func:`solver._newton.newton` runs along
the projection arc ``P(x + t d)``, its predicted decrease ``t g_F^T d_F + g_A^T (P(x + t d) - x)_A``.
It stops on the projected gradient ``||x - P(x - grad E)|| <= tol``. Once the active set settles it is
Newton's method on the free features, hence quadratic. O(D K^2) per iteration for ``G_F``, O(D K) per
line-search trial.
"""

from __future__ import annotations

import math

import numpy as np

from ._iteration import ACTIVE_MARGIN as _ACTIVE_MARGIN
from ._iteration import Iterate, MethodOutcome, SearchDirection, full_space_floor, spd_solve
from ._newton import newton
from ._objective import neg_log_proba, neg_log_proba_rows


class BoundedEnergy:
    """``E(x) = lam/2 ||x - x0||^2 + logsumexp(Abar x + bbar)`` on the box ``[lower, upper]``.

    Unlike the unconstrained energies, each trial point is a projection, D-sized: trial steps are
    evaluated a few at a time.
    """

    batch = 8

    def __init__(self, coef_rel, intercept_rel, x0, target, lam, lower, upper):
        self.B, self.bbar, self.x0, self.target, self.lam = coef_rel, intercept_rel, x0, target, lam
        self.lower, self.upper = lower, upper
        self.identity = np.eye(coef_rel.shape[0])
        self.b_norm = float(np.linalg.norm(coef_rel))

    def clip(self, v):  # np.clip's dispatch costs more than the work at these sizes
        return np.minimum(np.maximum(v, self.lower), self.upper)

    def evaluate(self, x) -> Iterate:
        diff = x - self.x0
        value, proba = neg_log_proba(self.B @ x + self.bbar, self.target)
        grad = self.lam * diff + self.B.T @ proba
        step = x - self.clip(x - grad)  # the projected gradient
        return Iterate(x, 0.5 * self.lam * float(diff @ diff) + value, proba, grad, math.sqrt(float(step @ step)))

    def direction(self, current: Iterate) -> SearchDirection:
        x, grad, proba = current.point, current.grad, current.proba
        margin = min(_ACTIVE_MARGIN, current.grad_norm)
        active = np.where(grad > 0, x <= self.lower + margin, x >= self.upper - margin)
        free = ~active
        # Masking instead of gathering the free columns: at these sizes indexing costs more than the
        # arithmetic on the masked-out zeros. Active columns of B_F are zero, so C B_F g = C B_F g_F.
        g_free = grad * free
        B_free = self.B * free
        CB = np.sqrt(proba)[:, None] * (B_free - proba @ B_free)  # C B_F = diag(sqrt p)(I - 1 p^T) B_F
        y = spd_solve(self.lam * self.identity + CB @ CB.T, CB @ g_free)
        # free part: the Newton step; active part: a gradient step scaled like lam I
        vector = np.where(free, CB.T @ y - grad, -grad) / self.lam
        return SearchDirection(vector, float(g_free @ vector), active_grad=grad * active)

    def point_at(self, current: Iterate, direction: SearchDirection, step: float):
        return self.clip(current.point + step * direction.vector)

    def trials(self, current: Iterate, direction: SearchDirection, steps):
        points = self.clip(current.point[None, :] + steps[:, None] * direction.vector[None, :])
        diffs = points - self.x0
        values, _ = neg_log_proba_rows(points @ self.B.T + self.bbar, self.target)
        energies = 0.5 * self.lam * np.einsum("ij,ij->i", diffs, diffs) + values
        return energies, steps * direction.slope + (points - current.point) @ direction.active_grad

    def floor(self, current: Iterate) -> float:
        return full_space_floor(self.lam, current.point, self.x0, self.b_norm)

    def outcome(self, current: Iterate, n_iter: int, status: int) -> MethodOutcome:
        return MethodOutcome(current.point, current.proba, current.energy, current.grad_norm, n_iter, status,
                             self.floor(current))


def projected_newton(coef_rel, intercept_rel, x0, target, lam, lower, upper, x, tol, max_iter,
                     recorder) -> MethodOutcome:
    """Projected Newton from ``P(x)``."""
    energy = BoundedEnergy(coef_rel, intercept_rel, x0, target, lam, lower, upper)
    return newton(energy, energy.clip(x), tol, max_iter, recorder)
