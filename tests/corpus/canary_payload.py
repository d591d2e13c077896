"""A canary for the hostile-file tests: importing this module, restoring its object or calling its
function appends a line to the file named by the CANARY_PATH environment variable (nothing when unset).

The hostile .skops files in this folder refer to it; a loader that refuses them never imports it.
"""

import os

from sklearn.base import BaseEstimator, TransformerMixin


def sing(event: str) -> None:
    path = os.environ.get("CANARY_PATH")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(event + "\n")


sing("imported")


class CanaryTransformer(TransformerMixin, BaseEstimator):
    """An identity transformer that sings when it is restored from a file or used."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        sing("transform")
        return X

    def __setstate__(self, state):
        sing("setstate")
        super().__setstate__(state)


shout = lambda X: (sing("called"), X)[1]  # noqa: E731 - a lambda on purpose: skops records it by name
