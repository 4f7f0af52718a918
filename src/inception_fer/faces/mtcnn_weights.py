"""Read the MTCNN weights that the MIT-licensed ``mtcnn`` wheel ships, without running its code.

The wheel stores each network as ``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``: an LZ4 frame around
a joblib pickle of a list of numpy arrays (the Keras layers' weights, in layer order). joblib writes
each array as a small pickled ``NumpyArrayWrapper`` header followed by the raw bytes. This reader
unpickles with a whitelist (the header class, ``numpy.ndarray`` as a marker, ``numpy.dtype``) and
reads the raw bytes itself, so a tampered file can describe arrays but never run code. The
``mtcnn`` package is only located, never imported (its ``__init__`` imports TensorFlow).
"""

from __future__ import annotations

import importlib.util
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import CheckpointError, InceptionFerError

NETWORKS = ("pnet", "rnet", "onet")


def weights_dir() -> Path:
    """The folder of the installed ``mtcnn`` wheel's weight files; a clear error if it is absent."""
    spec = importlib.util.find_spec("mtcnn")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "assets" / "weights"
        if all((folder / f"{net}.lz4").is_file() for net in NETWORKS):
            return folder
    raise InceptionFerError(
        "the 'mtcnn' face detector reads its weights from the mtcnn package, which is not "
        "installed (pip install mtcnn), or pass weights_dir= a folder with pnet.lz4, rnet.lz4 "
        "and onet.lz4"
    )


def read_weights(path: Path) -> list[np.ndarray]:
    """The list of float32 arrays in one ``.lz4`` weight file of the mtcnn wheel."""
    import lz4.frame

    try:
        raw = lz4.frame.decompress(path.read_bytes())
    except (OSError, RuntimeError) as error:
        raise CheckpointError(f"cannot read MTCNN weights {path}: {error}") from None
    try:
        arrays = _ArrayUnpickler(io.BytesIO(raw)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as error:
        raise CheckpointError(
            f"MTCNN weights {path} are not a joblib array list: {error}"
        ) from None
    if not isinstance(arrays, list) or not all(isinstance(a, np.ndarray) for a in arrays):
        raise CheckpointError(f"MTCNN weights {path} do not hold a list of arrays")
    return arrays


class _ArrayHeader:
    """Stands in for joblib's ``NumpyArrayWrapper``: only its attributes are set, by BUILD."""

    shape: tuple[int, ...]
    order: str
    dtype: np.dtype
    numpy_array_alignment_bytes: int | None


_BUILD: Callable[[Any], None] = pickle._Unpickler.dispatch[pickle.BUILD[0]]


class _ArrayUnpickler(pickle._Unpickler):
    """A pure-Python unpickler allowing only joblib's array headers and numpy dtypes."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"): _ArrayHeader,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)
    stack: list[Any]

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self._raw = file

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None

    def _load_build(self) -> None:
        _BUILD(self)
        if isinstance(self.stack[-1], _ArrayHeader):
            self.stack[-1] = self._read_array(self.stack[-1])

    dispatch[pickle.BUILD[0]] = _load_build

    def _read_array(self, header: _ArrayHeader) -> np.ndarray:
        dtype = np.dtype(header.dtype)
        if dtype.hasobject:
            raise pickle.UnpicklingError("object arrays are not allowed")
        if getattr(header, "numpy_array_alignment_bytes", None) is not None:
            self._raw.read(self._raw.read(1)[0])
        shape = tuple(int(n) for n in header.shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        data = self._raw.read(nbytes)
        if len(data) != nbytes:
            raise EOFError(f"array data ends after {len(data)} of {nbytes} bytes")
        if header.order == "F":
            return np.frombuffer(data, dtype=dtype).reshape(shape[::-1]).T.astype(np.float32)
        return np.frombuffer(data, dtype=dtype).reshape(shape).astype(np.float32)
