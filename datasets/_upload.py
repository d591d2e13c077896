"""Untrusted uploads: CSV/TSV tables, ``.npz`` arrays and ``.zip`` folders of images.

Everything is bounded before it is read: file size, rows, columns, zip entries and unpacked bytes
(a zip bomb is refused from its directory, before anything is inflated). Nothing is unpickled.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from ._dataset import DataError, Dataset, RawTable, make_dataset
from ._tabular import MAX_COLUMNS, MAX_ROWS, check_table, tabular_from_table

MAX_UPLOAD_BYTES = 50 * 2**20
MAX_ZIP_ENTRIES = 20_000
MAX_UNPACKED_BYTES = 300 * 2**20
MAX_IMAGE_BYTES = 5 * 2**20
MAX_IMAGE_SIDE = 1024
MAX_MODEL_SIDE = 64  # images larger than this are resized to 28 x 28
MAX_ARRAY_ELEMENTS = 30_000_000
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
TABLE_EXTENSIONS = {".csv", ".tsv", ".txt"}
PICKLE_EXTENSIONS = {".pkl", ".pickle", ".joblib"}

LIMITS = {
    "file size": f"{MAX_UPLOAD_BYTES // 2**20} MB",
    "table rows": f"{MAX_ROWS:,}",
    "table columns": f"{MAX_COLUMNS:,}",
    "files in a zip": f"{MAX_ZIP_ENTRIES:,}",
    "unpacked zip size": f"{MAX_UNPACKED_BYTES // 2**20} MB",
    "array elements in an npz": f"{MAX_ARRAY_ELEMENTS:,}",
}


def parse_upload(data: bytes, filename: str, target: str | None = None, drop_missing: bool = False) -> Dataset:
    """Parse an uploaded file into a :class:`Dataset`.

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        Its name; the extension picks the parser (``.csv``, ``.tsv``, ``.txt``, ``.npz``, ``.zip``).
    target : str, optional
        Target column of a table (default: a column named like a label, else the last one).
    drop_missing : bool
        Drop table rows with missing or non-finite values instead of refusing the file.

    Raises
    ------
    DataError
        With a message that says what is wrong and what to do.
    """
    name, data = _checked_file(data, filename)
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in TABLE_EXTENSIONS:
        return tabular_from_table(_read_table(data, name, suffix, target), drop_missing)
    if suffix == ".npz":
        return _parse_npz(data, name)
    if suffix == ".zip":
        return _parse_image_zip(data, name)
    if suffix in PICKLE_EXTENSIONS:
        raise DataError(f"{name} is a pickle; pickles can run code when loaded and are never opened here. Export the data as CSV or .npz")
    raise DataError(f"{name}: unsupported file type {suffix or '(none)'}; upload a .csv/.tsv table, an .npz with X and y, or a .zip of class folders of images")


def read_table(data: bytes, filename: str, target: str | None = None) -> RawTable:
    """Read an uploaded CSV/TSV table as it is, for a pipeline that encodes it itself.

    The same file and header checks as :func:`parse_upload` (size, binary content, delimiter, rows,
    columns, distinct names, the target column), but nothing is encoded: text columns stay text and
    missing entries stay missing (NaN); whoever encodes the table decides what it can read.

    Raises
    ------
    DataError
    """
    name, data = _checked_file(data, filename)
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PICKLE_EXTENSIONS:
        raise DataError(f"{name} is a pickle; pickles can run code when loaded and are never opened here. Export the table as CSV")
    if suffix not in TABLE_EXTENSIONS:
        raise DataError(f"{name}: unsupported file type {suffix or '(none)'}; a table is a .csv, .tsv or .txt file")
    return _read_table(data, name, suffix, target)


def is_table_file(filename: str) -> bool:
    """Whether an upload of this name is read as a table (:func:`read_table`)."""
    return PurePosixPath(str(filename).replace("\\", "/")).suffix.lower() in TABLE_EXTENSIONS


def _checked_file(data, filename) -> tuple[str, bytes]:
    """The upload's base name and bytes, once they are bytes, not empty and within the size limit."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataError("the upload must be bytes")
    data = bytes(data)
    name = PurePosixPath(str(filename).replace("\\", "/")).name or "upload"
    if len(data) == 0:
        raise DataError(f"{name} is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise DataError(f"{name} is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    return name, data


def table_columns(data: bytes, filename: str) -> list[str]:
    """The header of an uploaded table (to let the user pick the target); [] if it cannot be read."""
    try:
        text = _decode_text(bytes(data[: 2**20]), filename)
        suffix = PurePosixPath(filename).suffix.lower()
        header = pd.read_csv(io.StringIO(text), sep=_sniff_delimiter(text, suffix), nrows=0)
    except (DataError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, UnicodeError):
        return []
    return [str(c).strip() for c in header.columns][:MAX_COLUMNS]


# -- tables -----------------------------------------------------------------------------------
def _decode_text(data: bytes, name: str) -> str:
    if b"\x00" in data[:8192]:
        raise DataError(f"{name} looks like a binary file, not a text table; upload a CSV or TSV")
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DataError(f"{name}: could not decode the text")  # latin-1 decodes anything; kept for clarity


def _sniff_delimiter(text: str, suffix: str) -> str:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return "\t" if suffix == ".tsv" else ","


def _read_table(data, name, suffix, target) -> RawTable:
    text = _decode_text(data, name)
    if not text.strip():
        raise DataError(f"{name} has no text")
    delimiter = _sniff_delimiter(text, suffix)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, nrows=MAX_ROWS + 1, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} has no header row or data") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{name} is not a well-formed table ({str(exc).splitlines()[0]}); check the delimiter and quoting") from None
    if frame.shape[1] > MAX_COLUMNS:
        raise DataError(f"{name} has {frame.shape[1]:,} columns; at most {MAX_COLUMNS:,} are supported")
    if frame.shape[0] > MAX_ROWS:
        raise DataError(f"{name} has more than {MAX_ROWS:,} rows; sample it down before uploading")
    return check_table(frame, target=target, name=name, description=f"Uploaded table (delimiter {delimiter!r}).")


# -- archives ---------------------------------------------------------------------------------
def _open_zip(data: bytes, name: str, what: str) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError(f"{name} is not a valid {what} (the zip container is damaged or truncated)") from None
    entries = archive.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise DataError(f"{name} holds {len(entries):,} files; at most {MAX_ZIP_ENTRIES:,} are accepted")
    unpacked = sum(e.file_size for e in entries)
    if unpacked > MAX_UNPACKED_BYTES:
        raise DataError(f"{name} would unpack to {unpacked / 2**20:,.0f} MB; at most {MAX_UNPACKED_BYTES // 2**20} MB are accepted")
    return archive


def _parse_npz(data: bytes, name: str) -> Dataset:
    archive = _open_zip(data, name, ".npz archive")
    for entry in archive.infolist():
        if entry.file_size > 8 * MAX_ARRAY_ELEMENTS + 4096:
            raise DataError(f"{name}: array {entry.filename} is too large ({entry.file_size / 2**20:.0f} MB)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            keys = set(npz.files)
            if not {"X", "y"} <= keys:
                raise DataError(f"{name} must contain arrays 'X' and 'y'; it has {', '.join(sorted(keys)) or 'none'}")
            X, y = npz["X"], npz["y"]
            image_shape = npz["image_shape"] if "image_shape" in keys else None
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise DataError(f"{name} contains object arrays (pickled Python objects), which are never loaded; save plain numeric arrays") from None
        raise DataError(f"{name} could not be read as numpy arrays ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise DataError(f"{name} is damaged ({type(exc).__name__}); re-save it with numpy.savez") from None
    return _arrays_to_dataset(X, y, image_shape, name)


def _arrays_to_dataset(X, y, image_shape, name) -> Dataset:
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name}: X must be numeric, got dtype {X.dtype}")
    if y.ndim != 1:
        raise DataError(f"{name}: y must be one-dimensional, got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"{name}: X has {X.shape[0]} rows but y has {y.shape[0]} labels; they must match")
    if y.dtype.kind not in "biuUS":
        raise DataError(f"{name}: y must hold integer or string labels, got dtype {y.dtype}")
    if X.ndim == 4 and X.shape[3] in (1, 3, 4):
        X = X[..., :3].astype(np.float64).mean(axis=3)
    if X.ndim == 3:
        image_shape = X.shape[1:]
        X = X.reshape(X.shape[0], -1)
    elif X.ndim != 2:
        raise DataError(f"{name}: X must have shape (n, D), (n, h, w) or (n, h, w, c); got {X.shape}")
    if X.shape[0] < 4 or X.shape[1] < 1:
        raise DataError(f"{name}: X has shape {X.shape}; at least 4 rows and 1 feature are needed")
    X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        bad = int(np.sum(~np.all(np.isfinite(X), axis=1)))
        raise DataError(f"{name}: {bad} row(s) of X contain NaN or inf; remove them and upload again")
    if image_shape is not None:
        shape = tuple(int(v) for v in np.asarray(image_shape).ravel())
        if len(shape) != 2 or shape[0] * shape[1] != X.shape[1]:
            raise DataError(f"{name}: image_shape {shape} does not match the {X.shape[1]} features of X")
        top = X.max()
        if X.min() < 0:
            raise DataError(f"{name}: image pixels must be >= 0")
        if top > 1.0:
            X = X / (255.0 if top <= 255.0 else top)
        names = [f"pixel_{r}_{c}" for r in range(shape[0]) for c in range(shape[1])]
        return make_dataset(name, X, y, names, "image", image_shape=shape, description="Uploaded image arrays.")
    from ._dataset import TabularEncoding

    names = [f"x{j}" for j in range(X.shape[1])]
    return make_dataset(name, X, y, names, "tabular", description="Uploaded arrays.",
                        encoding=TabularEncoding(tuple((f, j) for j, f in enumerate(names)), (), tuple(names)))


def _parse_image_zip(data: bytes, name: str) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    archive = _open_zip(data, name, "zip file")
    images = []
    for entry in archive.infolist():
        path = PurePosixPath(entry.filename)
        if entry.is_dir() or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if any(part.startswith((".", "__MACOSX")) for part in path.parts):
            continue
        if len(path.parts) < 2:
            raise DataError(f"{name}: image {entry.filename} is not in a folder; put each class's images in a folder named after the class")
        if entry.file_size > MAX_IMAGE_BYTES:
            raise DataError(f"{name}: {entry.filename} is {entry.file_size / 2**20:.1f} MB; images may be at most {MAX_IMAGE_BYTES // 2**20} MB")
        images.append((path.parts[-2], entry))
    if not images:
        raise DataError(f"{name} has no PNG or JPEG images in class folders (expected class_name/image.png)")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE
    decoded, labels = [], []
    for label, entry in images:
        try:
            with archive.open(entry) as handle:
                raw = handle.read(MAX_IMAGE_BYTES + 1)
            image = Image.open(io.BytesIO(raw))
            if max(image.size) > MAX_IMAGE_SIDE:
                raise DataError(f"{name}: {entry.filename} is {image.size[0]}x{image.size[1]} pixels; at most {MAX_IMAGE_SIDE} per side")
            decoded.append(image.convert("L"))
            labels.append(label)
        except DataError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, zipfile.BadZipFile) as exc:
            raise DataError(f"{name}: {entry.filename} is not a readable image ({type(exc).__name__})") from None
    size = Counter(image.size for image in decoded).most_common(1)[0][0]
    if max(size) > MAX_MODEL_SIDE:
        size = (28, 28)
    X = np.stack([np.asarray(image.resize(size) if image.size != size else image, dtype=np.float64).ravel() / 255.0
                  for image in decoded])
    width, height = size
    names = [f"pixel_{r}_{c}" for r in range(height) for c in range(width)]
    return make_dataset(name, X, np.array(labels), names, "image", image_shape=(height, width),
                        description=f"Uploaded images, grayscale {width}x{height}.")
