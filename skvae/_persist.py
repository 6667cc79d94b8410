"""Saving and loading fitted estimators as safetensors files: data, not code.

A file holds every tensor of the estimator (network weights, fitted
variances, scaling statistics, quantile maps, optimizer moments) as a named
tensor, and everything else (constructor parameters, fitted attributes, the
data schemas) as one JSON document in the header metadata. Loading parses
that JSON and rebuilds only classes of an allow-list, by setting their
attributes: no ``pickle``, no ``torch.load``, no ``eval``, no import named
by the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import tempfile
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

#: Version of the file layout written by :func:`save`; :func:`load` reads
#: this version and every older one it lists in :data:`READABLE_FORMATS`.
FORMAT_VERSION = 1
READABLE_FORMATS = (1,)
#: Metadata key of the JSON document.
METADATA_KEY = "skvae"
#: Largest header accepted, in bytes (safetensors' own limit is 100 MB).
MAX_HEADER_BYTES = 100_000_000


def _allowed_classes() -> dict[str, type]:
    """Every class a file may name, by qualified name."""
    from sklearn.impute import MissingIndicator

    from ._data import ColumnStats, QuantileMap, TabularSchema
    from ._fitted import FittedVAE
    from ._frame import FrameColumn, FrameSchema
    from ._imputer import VAEImputer
    from ._outlier import VAEOutlierDetector
    from ._seqdata import SequenceSchema
    from ._seqvae import SequenceVAE
    from ._training import TrainResult
    from ._transformer import VAETransformer
    from ._vqvae import VQVAETransformer

    classes = [
        VAETransformer,
        VQVAETransformer,
        SequenceVAE,
        SequenceSchema,
        VAEImputer,
        VAEOutlierDetector,
        FittedVAE,
        TabularSchema,
        ColumnStats,
        QuantileMap,
        FrameSchema,
        FrameColumn,
        TrainResult,
        MissingIndicator,
    ]
    return {f"{c.__module__}.{c.__qualname__}": c for c in classes}


ESTIMATORS = (
    "VAETransformer",
    "VQVAETransformer",
    "SequenceVAE",
    "VAEImputer",
    "VAEOutlierDetector",
)


# ---------------------------------------------------------------------- encode
class _Encoder:
    """Turns an object graph into JSON-able data and named tensors."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.seen: dict[int, int] = {}
        self.objects = 0
        self.allowed = {v: k for k, v in _allowed_classes().items()}

    def tensor(self, value: torch.Tensor) -> str:
        name = f"t{len(self.tensors)}"
        self.tensors[name] = value.detach().cpu().contiguous()
        return name

    def __call__(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int | np.integer) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float | np.floating):
            value = float(value)
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, where) for v in value]}
        if isinstance(value, list):
            return [self(v, where) for v in value]
        if isinstance(value, dict):
            return {
                "__dict__": [[self(k, where), self(v, where)] for k, v in value.items()]
            }
        if isinstance(value, np.ndarray):
            return self.array(value, where)
        if isinstance(value, torch.Tensor):
            return {"__tensor__": self.tensor(value), "dtype": str(value.dtype)}
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, np.dtype):
            return {"__dtype__": value.str}
        if isinstance(value, pd.CategoricalDtype):
            return {
                "__categorical__": self(value.categories, where),
                "ordered": bool(value.ordered),
            }
        if isinstance(value, pd.api.extensions.ExtensionDtype):
            return {"__pandas_dtype__": str(value)}
        if isinstance(value, pd.Index):
            return {
                "__index__": self.array(np.asarray(value, dtype=object), where),
                "dtype": self(value.dtype, where),
            }
        if isinstance(value, torch.optim.Optimizer):
            return self.optimizer(value)
        if isinstance(value, nn.Module):
            return self.module(value, where)
        return self.instance(value, where)

    def array(self, value: np.ndarray, where: str) -> dict:
        if value.dtype.kind in "biuf":
            return {"__array__": self.tensor(torch.from_numpy(np.array(value)))}
        if value.dtype.kind != "O" and value.dtype.kind != "U":
            raise TypeError(f"{where}: cannot save an array of dtype {value.dtype}.")
        items = [self(v, where) for v in value.ravel().tolist()]
        return {
            "__objects__": items,
            "shape": list(value.shape),
            "dtype": value.dtype.str,
        }

    def optimizer(self, value: torch.optim.Optimizer) -> dict:
        state = value.state_dict()
        return {
            "__optimizer__": type(value).__name__,
            "state": self(state["state"], "optimizer"),
            "param_groups": self(state["param_groups"], "optimizer"),
        }

    def register(self, value: Any) -> tuple[int, dict | None]:
        """A new object's index, or the reference to its first occurrence."""
        key = id(value)
        if key in self.seen:
            return self.seen[key], {"__ref__": self.seen[key]}
        self.seen[key] = index = self.objects
        self.objects += 1
        return index, None

    def module(self, value: nn.Module, where: str) -> dict:
        index, ref = self.register(value)
        if ref is not None:
            return ref
        return {
            "__nn_module__": index,
            "state": {k: self.tensor(v) for k, v in value.state_dict().items()},
            "mask_channel": bool(value.mask_channel),
            "n_conditions": int(value.n_conditions),
        }

    def instance(self, value: Any, where: str) -> dict:
        cls = type(value)
        name = self.allowed.get(cls)
        if name is None:
            raise TypeError(
                f"{where}: cannot save an object of type {cls.__module__}."
                f"{cls.__qualname__}."
            )
        index, ref = self.register(value)
        if ref is not None:
            return ref
        return {
            "__object__": name,
            "id": index,
            "state": {k: self(v, f"{where}.{k}") for k, v in vars(value).items()},
        }


# ---------------------------------------------------------------------- decode
class _Decoder:
    """Rebuilds what :class:`_Encoder` wrote, allow-listed classes only."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors
        self.objects: dict[int, Any] = {}
        self.allowed = _allowed_classes()

    def tensor(self, name: Any) -> torch.Tensor:
        if not isinstance(name, str) or name not in self.tensors:
            raise ValueError(f"The file names a tensor {name!r} it does not hold.")
        return self.tensors[name]

    def __call__(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict) or len(value) == 0:
            raise ValueError(f"Unreadable entry in the file's metadata: {value!r}.")
        tag = next(iter(value))
        handler = {
            "__float__": lambda: float(value["__float__"]),
            "__tuple__": lambda: tuple(self(v) for v in value["__tuple__"]),
            "__dict__": lambda: {self._key(k): self(v) for k, v in value["__dict__"]},
            "__array__": lambda: self.tensor(value["__array__"]).numpy().copy(),
            "__objects__": lambda: self.objects_array(value),
            "__tensor__": lambda: self.tensor(value["__tensor__"]).clone(),
            "__device__": lambda: torch.device(value["__device__"]),
            "__dtype__": lambda: np.dtype(value["__dtype__"]),
            "__categorical__": lambda: pd.CategoricalDtype(
                self(value["__categorical__"]), ordered=bool(value["ordered"])
            ),
            "__pandas_dtype__": lambda: pd.api.types.pandas_dtype(
                value["__pandas_dtype__"]
            ),
            "__index__": lambda: self.index(value),
            "__ref__": lambda: self.ref(value["__ref__"]),
            "__object__": lambda: self.instance(value),
            "__nn_module__": lambda: self.module(value),
            "__optimizer__": lambda: value,  # rebuilt once the module exists
        }.get(tag)
        if handler is None:
            raise ValueError(f"Unknown entry {tag!r} in the file's metadata.")
        return handler()

    def _key(self, key: Any) -> Any:
        key = self(key)
        return tuple(key) if isinstance(key, list) else key

    def objects_array(self, value: dict) -> np.ndarray:
        items = [self(v) for v in value["__objects__"]]
        out = np.empty(len(items), dtype=object)
        out[:] = items
        dtype = np.dtype(value["dtype"])
        return out.astype(dtype).reshape(value["shape"])

    def index(self, value: dict) -> pd.Index:
        values = self(value["__index__"])
        dtype = self(value["dtype"])
        if isinstance(dtype, pd.CategoricalDtype):
            return pd.CategoricalIndex(values, dtype=dtype)
        return pd.Index(list(values), dtype=dtype)

    def ref(self, index: Any) -> Any:
        if index not in self.objects:
            raise ValueError(
                f"The file refers to an object {index!r} it does not hold."
            )
        return self.objects[index]

    def instance(self, value: dict) -> Any:
        name = value["__object__"]
        cls = self.allowed.get(name)
        if cls is None:
            raise ValueError(
                f"The file names a class {name!r} that skvae does not load."
            )
        obj = cls.__new__(cls)
        self.objects[value["id"]] = obj
        state = {k: self(v) for k, v in value["state"].items()}
        obj.__dict__.update(state)
        return obj

    def module(self, value: dict) -> Any:
        placeholder = _PendingModule(value)
        self.objects[value["__nn_module__"]] = placeholder
        return placeholder


class _PendingModule:
    """Stands for a module until the estimator can rebuild it."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec


# ------------------------------------------------------------------- file io
def save(estimator, path: str | os.PathLike) -> None:
    """Save a fitted skvae estimator to one safetensors file.

    Every tensor of the fitted model becomes a named tensor of the file;
    the constructor parameters, fitted attributes and data schemas go into
    the file's header as JSON. :func:`load` rebuilds the estimator without
    running code from the file.

    Parameters
    ----------
    estimator : estimator
        A fitted skvae estimator: :class:`VAETransformer`, :class:`VAEImputer`,
        :class:`VAEOutlierDetector`, :class:`VQVAETransformer` or
        :class:`SequenceVAE`.
    path : str or path-like
        File to write (conventionally ``*.safetensors``); replaced at once
        when the file is complete, so an interrupted save leaves no partial
        file there.

    Raises
    ------
    TypeError
        If ``estimator`` is not a skvae estimator, or holds something that
        cannot be stored as data (such as a ``SequenceVAE``'s ``tokenizer``
        function).
    sklearn.exceptions.NotFittedError
        If it is not fitted.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skvae import VAETransformer, load, save
    >>> X = np.random.RandomState(0).normal(size=(50, 3))
    >>> vae = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "vae.safetensors")
    ...     save(vae, path)
    ...     loaded = load(path)
    >>> np.array_equal(loaded.transform(X), vae.transform(X))
    True
    """
    from safetensors.torch import save_file
    from sklearn.utils.validation import check_is_fitted

    from . import __version__

    if type(estimator).__name__ not in ESTIMATORS:
        raise TypeError(
            "skvae.save takes a VAETransformer, VAEImputer or VAEOutlierDetector; "
            f"got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    encoder = _Encoder()
    document = {
        "format_version": FORMAT_VERSION,
        "skvae_version": __version__,
        "torch_version": torch.__version__,
        "estimator": type(estimator).__name__,
        "params": encoder(estimator.get_params(deep=False), "params"),
        "object": encoder(estimator, "estimator"),
    }
    metadata = {METADATA_KEY: json.dumps(document, allow_nan=False)}
    # Written beside the target, then renamed over it: an interrupted save
    # leaves the target as it was (absent, or the previous file).
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder
    )
    os.close(handle)
    try:
        save_file(encoder.tensors, temporary, metadata=metadata)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def _read_header(path: str | os.PathLike) -> tuple[dict, int]:
    """The safetensors header of ``path`` and its length, checked."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError(
                    f"{path!r} is not a skvae model file: it is empty or truncated "
                    f"({size} bytes)."
                )
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES or 8 + n > size:
                raise ValueError(
                    f"{path!r} is not a skvae model file: its header is truncated "
                    "or not a safetensors header."
                )
            raw = f.read(n)
    except OSError as exc:
        raise ValueError(f"Cannot read {path!r}: {exc}.") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path!r} is not a skvae model file: its header is not JSON."
        ) from exc
    if not isinstance(header, dict):
        raise ValueError(f"{path!r} is not a skvae model file.")
    return header, 8 + n


def _document(path: str | os.PathLike, header: dict) -> dict:
    """The skvae JSON document of a header, with its format checked."""
    meta = header.get("__metadata__") or {}
    text = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    if not isinstance(text, str):
        raise ValueError(
            f"{os.fspath(path)!r} is a safetensors file but not a skvae model "
            "(no skvae metadata); was it written by skvae.save?"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{os.fspath(path)!r}: its skvae metadata is not JSON."
        ) from exc
    version = document.get("format_version") if isinstance(document, dict) else None
    if not isinstance(version, int):
        raise ValueError(
            f"{os.fspath(path)!r}: the skvae metadata has no format version."
        )
    if version not in READABLE_FORMATS:
        newer = version > FORMAT_VERSION
        raise ValueError(
            f"{os.fspath(path)!r} has skvae file format {version}; this skvae "
            f"({_version()}) reads formats {list(READABLE_FORMATS)}. "
            + (
                f"It was written by skvae {document.get('skvae_version')}: "
                "upgrade skvae to load it."
                if newer
                else "Load it with an older skvae and save it again."
            )
        )
    if document.get("estimator") not in ESTIMATORS:
        raise ValueError(
            f"{os.fspath(path)!r} names an unknown estimator "
            f"{document.get('estimator')!r}."
        )
    return document


def _version() -> str:
    from . import __version__

    return __version__


def inspect(path: str | os.PathLike) -> dict:
    """The metadata of a saved model, without building it.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    metadata : dict
        ``format_version``, ``skvae_version``, ``torch_version``,
        ``estimator`` (class name), ``params`` (constructor parameters),
        ``fitted`` (the public fitted attributes that are plain values:
        ``n_iter_``, ``loss_curve_``, ``offset_``, ``classes_``, ...), and
        ``tensors`` (name to shape and dtype).

    Raises
    ------
    ValueError
        If the file is not a skvae model file, or of an unreadable version.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skvae import VAETransformer, inspect, save
    >>> X = np.random.RandomState(0).normal(size=(50, 3))
    >>> vae = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "vae.safetensors")
    ...     save(vae, path)
    ...     metadata = inspect(path)
    >>> metadata["estimator"], metadata["params"]["n_components"]
    ('VAETransformer', 2)
    """
    header, _ = _read_header(path)
    document = _document(path, header)
    state = document["object"].get("state", {})
    decoder = _Decoder({})
    fitted = {}
    for key, value in state.items():
        if not key.endswith("_") or key.startswith("_"):
            continue
        try:
            fitted[key] = _plain(decoder(value))
        except ValueError:
            continue  # holds tensors or objects: not a plain value
    tensors = {
        k: {"shape": v["shape"], "dtype": v["dtype"]}
        for k, v in header.items()
        if k != "__metadata__"
    }
    return {
        "format_version": document["format_version"],
        "skvae_version": document.get("skvae_version"),
        "torch_version": document.get("torch_version"),
        "estimator": document["estimator"],
        "params": _plain(decoder(document["params"])),
        "fitted": fitted,
        "tensors": tensors,
    }


def _plain(value: Any) -> Any:
    """JSON-like Python values (tuples and arrays as lists); else ValueError."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufOU":
        return _plain(value.tolist())
    if isinstance(value, torch.device | np.dtype):
        return str(value)
    raise ValueError("not a plain value")


def load(path: str | os.PathLike, *, device: str | torch.device = "cpu"):
    """Load an estimator saved by :func:`save`; no code from the file runs.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    device : str or torch.device, default="cpu"
        The loaded estimator's ``device`` parameter (it replaces the saved
        one): where its inference and further training run. Tensors are
        read to the CPU, where fitted modules stay between calls, so a model
        trained on CUDA loads on a machine without one.

    Returns
    -------
    estimator : estimator
        The fitted estimator (of the saved class), giving the same results as
        the saved one.

    Raises
    ------
    ValueError
        If the file is empty, truncated, not a skvae model, of an unknown
        format version, names an unknown class or parameter, or holds a
        tensor whose shape does not match the model. Nothing is returned
        half-built.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skvae import VAETransformer, load, save
    >>> X = np.random.RandomState(0).normal(size=(50, 3))
    >>> vae = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "vae.safetensors")
    ...     save(vae, path)
    ...     loaded = load(path, device="cpu")
    >>> loaded.device, np.array_equal(loaded.transform(X), vae.transform(X))
    ('cpu', True)
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    header, _ = _read_header(path)
    document = _document(path, header)
    try:
        tensors = load_file(os.fspath(path), device="cpu")
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ValueError(f"{os.fspath(path)!r}: unreadable tensors ({exc}).") from exc
    try:
        return _build(document, tensors, device)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(
            f"{os.fspath(path)!r}: the skvae metadata is inconsistent "
            f"({type(exc).__name__}: {exc})."
        ) from exc


def _build(document: dict, tensors: dict, device_param):
    decoder = _Decoder(tensors)
    classes = _allowed_classes()
    name = document["estimator"]
    cls = next(c for c in classes.values() if c.__name__ == name)
    params = decoder(document["params"])
    if not isinstance(params, dict):
        raise ValueError("The file's estimator parameters are unreadable.")
    valid = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"The file gives {name} parameters it does not have: {unknown}. Was "
            "it written by a newer skvae?"
        )
    spec = document["object"]
    if spec.get("__object__") != f"{cls.__module__}.{cls.__qualname__}":
        raise ValueError(f"The file's fitted object is not a {name}.")
    estimator = decoder(spec)
    estimator.set_params(**{**params, "device": device_param})
    _rebuild_modules(estimator, decoder)
    return estimator


def _rebuild_modules(estimator, decoder: _Decoder) -> None:
    """Build each pending module from the estimator's schema; load weights."""
    fitted = estimator._fitted
    pending = fitted.module
    if not isinstance(pending, _PendingModule):
        raise ValueError("The file holds no fitted module.")
    spec = pending.spec
    module = estimator._build_module(
        fitted.schema, bool(spec["mask_channel"]), int(spec["n_conditions"]), 0
    )
    state = {k: decoder.tensor(v) for k, v in spec["state"].items()}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(
            f"The file's module weights do not match the model: missing {missing}, "
            f"unexpected {extra}."
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"The file's tensor for {key!r} has shape {tuple(value.shape)}; "
                f"the model needs {tuple(expected[key].shape)}."
            )
    module.load_state_dict(state)
    module.eval()
    fitted.module = module
    for key, value in list(estimator.__dict__.items()):
        if isinstance(value, _PendingModule):
            estimator.__dict__[key] = module
    result = estimator.__dict__.get("_train_state")
    if result is not None and isinstance(result.optimizer, dict):
        from ._training import make_optimizer

        spec = result.optimizer
        # The saved parameter groups (learning rate included) replace these.
        optimizer = make_optimizer(module, 1e-3)
        optimizer.load_state_dict(
            {
                "state": decoder(spec["state"]),
                "param_groups": decoder(spec["param_groups"]),
            }
        )
        result.optimizer = optimizer
