"""Built-in datasets (shipped, offline) and parsing of untrusted uploads. numpy/pandas/PIL only.

>>> import datasets
>>> datasets.load_builtin("iris").X.shape
(150, 4)
"""

from ._builtin import list_builtin, load_builtin, make_text_like, make_toy_2d
from ._dataset import CategoricalGroup, DataError, Dataset, RawTable, TabularEncoding
from ._tabular import MissingValuesError, check_table, default_target, tabular_from_table
from ._upload import LIMITS, is_table_file, parse_upload, read_table, table_columns

__all__ = [
    "LIMITS",
    "CategoricalGroup",
    "DataError",
    "Dataset",
    "MissingValuesError",
    "RawTable",
    "TabularEncoding",
    "check_table",
    "default_target",
    "is_table_file",
    "list_builtin",
    "load_builtin",
    "make_text_like",
    "make_toy_2d",
    "parse_upload",
    "read_table",
    "table_columns",
    "tabular_from_table",
]
