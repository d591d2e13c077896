"""The problem the solvers see, posed once from the public arguments (MATH.md section 6).

With immutable features or costs, the distance ``sum_j c_j (x_j - x0_j)^2`` is the plain one in
``y = sqrt(c) x[free]``: the model's columns are scaled, the fixed features' contribution moves into the
intercept, and ranges become ranges on ``y``. Without them the solvers see the user's own model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._constraints import Constraints, parse_constraints
from ._model import SoftmaxModel


def check_model(model) -> SoftmaxModel:
    if not isinstance(model, SoftmaxModel):
        raise ValueError(f"model must be a solver.SoftmaxModel, got {type(model).__name__}; "
                         "use SoftmaxModel.from_estimator(est) for a scikit-learn model")
    return model


@dataclass(frozen=True, eq=False)
class Problem:
    """The model, source and ranges in the solver's coordinates.

    Attributes
    ----------
    model : SoftmaxModel
        The column-scaled model in the free features (``rescaled``), else the user's own.
    x0 : ndarray
        The source in the solver's coordinates (``y0 = sqrt(c) x0[free]`` when rescaled).
    constraints : Constraints or None
    source : ndarray
        ``x0`` in the user's features.
    rescaled : bool
    """

    model: SoftmaxModel
    x0: np.ndarray
    constraints: Constraints | None
    source: np.ndarray
    rescaled: bool = False

    @property
    def lower(self):
        return None if self.constraints is None else self.constraints.reduced_lower

    @property
    def upper(self):
        return None if self.constraints is None else self.constraints.reduced_upper

    def to_reduced(self, x):
        return self.constraints.to_reduced(x) if self.rescaled else x

    def to_full(self, y):
        return self.constraints.to_full(y, self.source) if self.rescaled else y

    def active_bounds(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Features (user's indices) of ``x`` at their lower and upper bound."""
        if self.constraints is None:
            empty = np.zeros(0, dtype=int)
            return empty, empty
        return self.constraints.active_bounds(x)

    def source_outside_ranges(self) -> bool:
        """Does the source itself break a range?"""
        if self.lower is None:
            return False
        return bool(np.any(self.x0 < self.lower) or np.any(self.x0 > self.upper))


def pose(model: SoftmaxModel, x0: np.ndarray, immutable=None, cost=None, bounds=None) -> Problem:
    """Validate the constraint arguments and build the :class:`Problem` the solvers see (x0 validated)."""
    constraints = parse_constraints(model.n_features, immutable, cost, bounds)
    if constraints is None:
        return Problem(model, x0, None, x0)
    if constraints.free.size == 0:
        raise ValueError("every feature is immutable (or has cost 0): nothing can change; free at least one feature")
    if constraints.free.size == model.n_features and np.all(constraints.scale == 1.0):
        return Problem(model, x0, constraints, x0)  # ranges only: the user's own model and coordinates
    scaled = model.column_scaled(constraints.free, constraints.scale, constraints.key)
    fixed = np.ones(model.n_features, dtype=bool)
    fixed[constraints.free] = False
    intercept = model.intercept + model.coef[:, fixed] @ x0[fixed] if fixed.any() else model.intercept
    return Problem(scaled.with_intercept(intercept), constraints.to_reduced(x0), constraints, x0, rescaled=True)


def pose_problem(model, x0, immutable=None, cost=None, bounds=None) -> Problem:
    r"""The problem :func:`invert` and the questions solve, in the solver's coordinates (MATH.md section 6).

    With immutable features or costs the distance :math:`\sum_j c_j (x_j - x_{0j})^2` becomes the plain one
    in ``y = sqrt(c) x[free]``: ``problem.model`` is the column-scaled model (its basis cached on the
    user's model, shared by every instance), the fixed features' contribution is in its intercept,
    ``problem.x0`` is ``y0`` and ``problem.lower``/``upper`` are the ranges of ``y``. Without them it is
    the user's own model and x0. For code that solves the same problem elsewhere (the dashboard's
    in-browser slider).

    Raises
    ------
    ValueError
        For invalid arguments, naming the argument.
    """
    from ._validation import check_instance

    model = check_model(model)
    return pose(model, check_instance(x0, model.n_features), immutable, cost, bounds)
