"""The objective in relative logits (MATH.md section 1), shared by every method.

With ``w = Abar x + bbar`` (so ``w_k = 0``), ``-log p_k(x) = logsumexp(w)`` exactly. Evaluating it as
``log1p(sum_{i != k} exp(w_i))`` when the target dominates keeps the digits that ``logsumexp(z) - z_k``
loses once ``p_k -> 1``.
"""

from __future__ import annotations

import math

import numpy as np

EPS = float(np.finfo(np.float64).eps)


def neg_log_proba(w: np.ndarray, target: int) -> tuple[float, np.ndarray]:
    """``(-log p_k, p)`` from relative logits ``w`` (``w[target] == 0``)."""
    top = float(w.max())
    if top <= 0.0:
        others = np.exp(w)
        others[target] = 0.0
        value = math.log1p(float(others.sum()))
    else:
        value = top + math.log(float(np.exp(w - top).sum()))
    return value, np.exp(w - value)


def neg_log_proba_rows(W: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise :func:`neg_log_proba` for W (n, K)."""
    top = W.max(axis=1)
    shifted = np.exp(W - np.maximum(top, 0.0)[:, None])
    others = shifted.copy()
    others[:, target] = 0.0
    small = top <= 0.0
    value = np.where(
        small,
        np.log1p(others.sum(axis=1)),
        np.maximum(top, 0.0) + np.log(shifted.sum(axis=1)),
    )
    return value, np.exp(W - value[:, None])


def relative_parameters(coef: np.ndarray, intercept: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """``Abar = A - 1 a_k^T`` and ``bbar = b - b_k 1``; O(D K)."""
    return coef - coef[target], intercept - intercept[target]


def full_energy_and_gradient(coef_rel, intercept_rel, x0, target, lam, x):
    """``E(x)``, ``grad E(x)`` and ``p(x)`` in the full space; O(D K)."""
    diff = x - x0
    value, proba = neg_log_proba(coef_rel @ x + intercept_rel, target)
    energy = 0.5 * lam * float(diff @ diff) + value
    gradient = lam * diff + coef_rel.T @ proba
    return energy, gradient, proba


def target_logit_margin(z: np.ndarray, target: int) -> float:
    """``log p_k - log(1 - p_k) = z_k - logsumexp_{j != k} z_j`` from logits ``z``, exact also when p_k is
    within 1e-16 of 1 (where ``1 - p_k`` itself would round to 0)."""
    others = np.concatenate([z[:target], z[target + 1:]])
    top = float(others.max())
    return float(z[target]) - top - math.log(float(np.exp(others - top).sum()))
