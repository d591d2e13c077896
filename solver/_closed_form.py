"""Logistic regression (K = 2): the minimiser is explicit up to one scalar root (MATH.md section 5).

With ``j`` the other class, ``c = a_j - a_k``, ``d = b_j - b_k`` and ``s0 = c^T x0 + d``:

    x* = x0 - sigma(s*) c / lam,   s* the root of  h(s) = s - s0 + (||c||^2 / lam) sigma(s),

``h' >= 1`` and the root lies in ``[s0 - ||c||^2 / lam, s0]``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

_MAX_STEPS = 200


def _sigmoid(s: float) -> float:
    if s >= 0.0:
        return 1.0 / (1.0 + math.exp(-s))
    e = math.exp(s)
    return e / (1.0 + e)


def logistic_root_scalar(s0: float, beta: float) -> float:
    """:func:`logistic_root` for one ``beta`` in plain floats (no array overhead)."""
    low, high, s = s0 - beta, s0, s0
    for _ in range(_MAX_STEPS):
        sig = _sigmoid(s)
        h = s - s0 + beta * sig
        if h == 0.0:
            return s
        if h > 0.0:
            high = s
        else:
            low = s
        nxt = s - h / (1.0 + beta * sig * (1.0 - sig))
        if not low < nxt < high:
            nxt = 0.5 * (low + high)
        if abs(nxt - s) <= 2.0 * np.finfo(float).eps * max(1.0, abs(s)):
            return nxt
        s = nxt
    return s


def logistic_root(s0: float, beta: np.ndarray) -> np.ndarray:
    """Root ``s`` of ``s - s0 + beta * sigma(s) = 0`` for each ``beta >= 0`` (vectorised).

    Safeguarded Newton: a Newton step that leaves the bracket is replaced by bisection.
    """
    beta = np.asarray(beta, dtype=np.float64)
    low = s0 - beta
    high = np.full_like(beta, s0)
    s = high.copy()
    for _ in range(_MAX_STEPS):
        sig = expit(s)
        h = s - s0 + beta * sig
        high = np.where(h > 0, s, high)
        low = np.where(h < 0, s, low)
        newton = s - h / (1.0 + beta * sig * (1.0 - sig))
        inside = (newton > low) & (newton < high)
        nxt = np.where(inside, newton, 0.5 * (low + high))
        nxt = np.where(h == 0, s, nxt)
        done = np.abs(nxt - s) <= 2.0 * np.finfo(float).eps * np.maximum(1.0, np.abs(s))
        s = nxt
        if np.all(done):
            break
    return s


def logistic_solutions(coef, intercept, x0, target, lams):
    """Solutions ``X`` (n, D) for each lam in ``lams``; O(D) per lam."""
    other = 1 - target
    c = coef[other] - coef[target]
    d = intercept[other] - intercept[target]
    s0 = float(c @ x0 + d)
    lams = np.asarray(lams, dtype=np.float64)
    if lams.shape == (1,):
        s = np.array([logistic_root_scalar(s0, float(c @ c) / float(lams[0]))])
    else:
        s = logistic_root(s0, float(c @ c) / lams)
    return x0[None, :] - (expit(s) / lams)[:, None] * c[None, :]


def logistic_diagnostics(coef, intercept, x0, target, lams, X):
    """Honest ``(energy, grad_norm, proba)`` at each row of X, computed from X itself; O(D) per row."""
    other = 1 - target
    c = coef[other] - coef[target]
    d = intercept[other] - intercept[target]
    s = X @ c + d
    sig = expit(s)
    diff = X - x0
    energy = 0.5 * lams * np.einsum("ij,ij->i", diff, diff) + np.logaddexp(0.0, s)
    gradient = lams[:, None] * diff + sig[:, None] * c[None, :]
    proba = np.empty((X.shape[0], 2))
    proba[:, other] = sig
    proba[:, target] = expit(-s)
    return energy, np.linalg.norm(gradient, axis=1), proba
