"""Built-in datasets (shipped, offline) and parsing of untrusted uploads. numpy/pandas/PIL only.

>>> import datasets
>>> datasets.load_builtin("iris").X.shape
(150, 4)
"""

from ._builtin import list_builtin, load_builtin, make_text_like, make_toy_2d
from ._dataset import CategoricalGroup, DataError, Dataset, TabularEncoding
from ._tabular import MissingValuesError, default_target
from ._upload import LIMITS, parse_upload, table_columns

__all__ = [
    "LIMITS",
    "CategoricalGroup",
    "DataError",
    "Dataset",
    "MissingValuesError",
    "TabularEncoding",
    "default_target",
    "list_builtin",
    "load_builtin",
    "make_text_like",
    "make_toy_2d",
    "parse_upload",
    "table_columns",
]
