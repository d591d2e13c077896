"""An orthonormal basis ``P`` (D x r) of the centred row space of ``A`` (MATH.md section 2).

Every minimiser satisfies ``x* - x0 = P u*``, whatever the target and lam, so the basis is built once
per model. Two representations, chosen by conditioning:

* implicit, ``P = A^T T`` with ``T`` (K x r): built from the K x K Gram matrix ``A A^T`` alone, in
  O(D K^2) with one BLAS call; never forms a D-sized matrix. Used when the centred weights are well
  conditioned (``kappa <= 100``), where two Cholesky-QR passes make ``P`` orthonormal to round-off.
* explicit, ``P = Q``: a thin SVD of ``A^T H``, used when the centred weights are ill conditioned or
  rank deficient (duplicated classes, K > D + 1); directions with singular value below 1e-12 of the
  largest are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

# Largest ratio lambda_max / lambda_min of the centred Gram matrix for the implicit form; its
# orthonormality error grows like eps * ratio.
_IMPLICIT_MAX_EIG_RATIO = 1e4
_RANK_RTOL = 1e-12


def centring_basis(n_classes: int) -> np.ndarray:
    """Orthonormal basis H (K x K-1) of the vectors whose entries sum to zero."""
    ones = np.ones((n_classes, 1)) / np.sqrt(n_classes)
    q, _ = np.linalg.qr(np.hstack([ones, np.eye(n_classes)[:, : n_classes - 1]]))
    return q[:, 1:]


@dataclass(frozen=True, eq=False)
class ReducedBasis:
    """``P`` (D x r, orthonormal columns) with ``M = A P`` (K x r).

    Exactly one of ``T`` (implicit, ``P = A^T T``) and ``Q`` (explicit, ``P = Q``) is set.
    """

    coef: np.ndarray
    M: np.ndarray
    T: np.ndarray | None
    Q: np.ndarray | None

    @property
    def rank(self) -> int:
        return self.M.shape[1]

    def lift(self, U: np.ndarray) -> np.ndarray:
        """``P u`` for the rows ``u`` of U (n x r, or one vector): O(D K) per row."""
        if self.Q is not None:
            return U @ self.Q.T
        return (U @ self.T.T) @ self.coef

    def project(self, V: np.ndarray) -> np.ndarray:
        """``P^T v`` for the rows ``v`` of V (n x D, or one vector)."""
        if self.Q is not None:
            return V @ self.Q
        return (V @ self.coef.T) @ self.T


def build_basis(coef: np.ndarray) -> ReducedBasis:
    """Build the reduced basis of a K x D weight matrix; O(D K^2) once per model."""
    n_classes = coef.shape[0]
    H = centring_basis(n_classes)
    empty = np.zeros((n_classes, 0))
    # The basis depends only on the row space: work with the Gram matrix of A / max|A|.
    scale = float(np.max(np.abs(coef)))
    if scale == 0.0:
        return ReducedBasis(coef=coef, M=empty, T=empty, Q=None)
    with np.errstate(over="ignore", invalid="ignore"):
        gram = (coef @ coef.T) / scale / scale
    if not np.all(np.isfinite(gram)):
        unit = coef / scale
        gram = unit @ unit.T
    centred_gram = H.T @ gram @ H
    eigvals, eigvecs = np.linalg.eigh(centred_gram)
    largest = eigvals[-1]
    # Centred weights at the level of round-off in A itself mean every class row is the same.
    noise = 1e3 * np.finfo(np.float64).eps * np.sqrt(np.trace(gram))
    if largest <= noise**2:
        return ReducedBasis(coef=coef, M=empty, T=empty, Q=None)
    if eigvals[0] >= largest / _IMPLICIT_MAX_EIG_RATIO:
        T = H @ (eigvecs / np.sqrt(eigvals))
        # Second Cholesky-QR pass: re-orthonormalise in the Gram metric.
        metric = T.T @ gram @ T
        upper = np.linalg.cholesky(metric).T
        T = scipy.linalg.solve_triangular(upper, T.T, trans="T", lower=False).T
        # P = unit^T T = coef^T (T / scale) and M = coef P = scale * (unit unit^T) T.
        return ReducedBasis(coef=coef, M=scale * (gram @ T), T=T / scale, Q=None)
    left, singular, _ = np.linalg.svd((coef / scale).T @ H, full_matrices=False)
    rank = int(np.sum(singular > max(_RANK_RTOL * singular[0], noise)))
    Q = np.ascontiguousarray(left[:, :rank])
    return ReducedBasis(coef=coef, M=coef @ Q, T=None, Q=Q)
