"""Read softmax parameters out of fitted scikit-learn estimators (duck-typed: no sklearn import)."""

from __future__ import annotations

import numpy as np


def _type_name(obj) -> str:
    return type(obj).__name__


def _logistic_parameters(lr):
    if not hasattr(lr, "coef_"):
        raise ValueError("the LogisticRegression is not fitted (it has no coef_)")
    if getattr(lr, "multi_class", "auto") == "ovr" and len(lr.classes_) > 2:
        raise ValueError(
            "this LogisticRegression was fitted one-vs-rest (multi_class='ovr'); its probabilities are not a "
            "softmax. Refit it with the default multinomial setting"
        )
    coef = np.asarray(lr.coef_, dtype=np.float64)
    intercept = np.broadcast_to(np.asarray(lr.intercept_, dtype=np.float64), (coef.shape[0],))
    if coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    return coef, np.array(intercept), np.asarray(lr.classes_)


def softmax_parameters(estimator):
    """``(coef, intercept, classes, feature_names)`` of a LogisticRegression or scaler+LR pipeline."""
    steps = [estimator]
    if _type_name(estimator) == "Pipeline":
        steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
    *scalers, final = steps
    if _type_name(final) != "LogisticRegression":
        raise ValueError(
            f"expected a LogisticRegression (or a Pipeline ending in one), got {_type_name(final)}"
        )
    for scaler in scalers:
        if _type_name(scaler) != "StandardScaler":
            raise ValueError(f"only StandardScaler steps can be folded into the model, got {_type_name(scaler)}")
    coef, intercept, classes = _logistic_parameters(final)
    # Fold scalers from the last to the first: W ((x - m) / s) + c = (W / s) x + (c - W (m / s)).
    for scaler in reversed(scalers):
        scale = getattr(scaler, "scale_", None)
        mean = getattr(scaler, "mean_", None)
        if scale is not None:
            coef = coef / np.asarray(scale, dtype=np.float64)
        if mean is not None:
            intercept = intercept - coef @ np.asarray(mean, dtype=np.float64)
    names = getattr(steps[0], "feature_names_in_", None)
    return coef, intercept, classes, None if names is None else [str(n) for n in names]
