"""Logistic regression (K = 2): the minimiser is explicit up to one scalar root (MATH.md section 5).

With ``j`` the other class, ``c = a_j - a_k``, ``d = b_j - b_k`` and ``s0 = c^T x0 + d``:

    x* = x0 - sigma(s*) c / lam,   s* the root of  h(s) = s - s0 + (||c||^2 / lam) sigma(s),

``h' >= 1`` and the root lies in ``[s0 - ||c||^2 / lam, s0]``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, lambertw

from ._iteration import round_off_floor
from ._objective import EPS

_MAX_STEPS = 200


def _initial_root(s0: float, beta: float) -> float:
    """Root of ``s - s0 + beta e^s = 0``, the equation with sigma(s) ~ e^s: ``s0 - W(beta e^s0)``.

    Accurate where the target wins clearly (s very negative), and inside the bracket in any case.
    """
    log_z = math.log(beta) + s0
    w = float(lambertw(math.exp(log_z)).real) if log_z < 700.0 else log_z - math.log(log_z)
    return min(max(s0 - w, s0 - beta), s0)


def sigmoid(s: float) -> float:
    """The logistic function of one float, without overflow."""
    if s >= 0.0:
        return 1.0 / (1.0 + math.exp(-s))
    e = math.exp(s)
    return e / (1.0 + e)


def logistic_root_scalar(s0: float, beta: float) -> float:
    """:func:`logistic_root` for one ``beta`` in plain floats (no array overhead)."""
    if beta == 0.0:
        return s0
    low, high, s = s0 - beta, s0, _initial_root(s0, beta)
    for _ in range(_MAX_STEPS):
        sig = sigmoid(s)
        h = s - s0 + beta * sig
        if h == 0.0:
            return s
        if h > 0.0:
            high = s
        else:
            low = s
        nxt = s - h / (1.0 + beta * sig * (1.0 - sig))
        if abs(nxt - s) <= 2.0 * EPS * max(1.0, abs(s)):
            return nxt
        if not low < nxt < high:
            nxt = 0.5 * (low + high)
        s = nxt
    return s


def logistic_root(s0: float, beta: np.ndarray) -> np.ndarray:
    """Root ``s`` of ``s - s0 + beta * sigma(s) = 0`` for each ``beta >= 0`` (vectorised).

    Safeguarded Newton: a Newton step that leaves the bracket is replaced by bisection.
    """
    beta = np.asarray(beta, dtype=np.float64)
    low = s0 - beta
    high = np.full_like(beta, s0)
    with np.errstate(divide="ignore"):
        log_z = np.log(beta) + s0
    big = log_z >= 700.0
    w = np.where(big, log_z - np.log(np.where(big, log_z, 1.0)), lambertw(np.exp(np.minimum(log_z, 700.0))).real)
    s = np.clip(s0 - w, low, high)
    for _ in range(_MAX_STEPS):
        sig = expit(s)
        h = s - s0 + beta * sig
        high = np.where(h > 0, s, high)
        low = np.where(h < 0, s, low)
        newton = s - h / (1.0 + beta * sig * (1.0 - sig))
        done = (h == 0) | (np.abs(newton - s) <= 2.0 * EPS * np.maximum(1.0, np.abs(s)))
        inside = (newton > low) & (newton < high)
        nxt = np.where(done | inside, newton, 0.5 * (low + high))
        nxt = np.where(h == 0, s, nxt)
        s = nxt
        if np.all(done):
            break
    return s


def logistic_path(coef, intercept, x0, target, lams):
    """Solutions for each lam, with ``(energy, grad_norm, proba, floor)`` computed from the solutions
    themselves (not from the root), so the reported gradient is honest; O(D) per lam."""
    other = 1 - target
    c = coef[other] - coef[target]
    d = float(intercept[other] - intercept[target])
    cc = float(c @ c)
    s0 = float(c @ x0) + d
    if lams.shape == (1,):
        roots = np.array([logistic_root_scalar(s0, cc / float(lams[0]))])
    else:
        roots = logistic_root(s0, cc / lams)
    step = expit(roots) / lams
    X = x0[None, :] - step[:, None] * c[None, :]
    s = X @ c + d
    sig = expit(s)
    diff = X - x0
    distance = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    energy = 0.5 * lams * distance**2 + np.logaddexp(0.0, s)
    grad_norm = np.linalg.norm(lams[:, None] * diff + sig[:, None] * c[None, :], axis=1)
    proba = np.empty((X.shape[0], 2))
    proba[:, other] = sig
    proba[:, target] = expit(-s)
    floor = round_off_floor(lams, np.linalg.norm(X, axis=1) + np.linalg.norm(x0), math.sqrt(cc))
    return X, energy, grad_norm, proba, floor
