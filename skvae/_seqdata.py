"""Sequences as tensors: texts to token ids, series to scaled steps, and back.

:class:`SequenceSchema` is learned at fit: for text, the vocabulary (tokens
seen at least ``min_frequency`` times) and the padded length; for series,
the number of steps and channels, a per-channel location and scale, and
the patch length (consecutive time steps read and written as one step).
``encode`` turns new sequences into a padded tensor and its mask (1 for a
step to score: a token, the end token, an observed value); ``decode`` turns
decoded steps back. No torch module or scikit-learn estimator here.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ._sequence import EOS, N_SPECIAL, UNK

#: Largest value of a series accepted (beyond, float32 arithmetic overflows).
MAX_VALUE = 1e30
#: ``patch_length="auto"``: the fewest time steps per patch that leave a
#: series at most this many model steps (an LSTM runs step by step).
MAX_SERIES_STEPS = 64


def tokens_of(text: str, tokenizer: Callable | None) -> list[str]:
    """The tokens of one text: its characters, or the tokenizer's list."""
    if tokenizer is None:
        return list(text)
    tokens = tokenizer(text)
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise TypeError(
            "tokenizer must return a list of strings for each text; got "
            f"{type(tokens).__name__} for {text[:30]!r}."
        )
    return list(tokens)


def as_sequences(X) -> tuple[str, object, bool]:
    """("text", list of str) or ("series", float array (n, T, C)) of ``X``.

    The third value says whether series came as a 2-D array.

    Text is a list, tuple, 1-D array or pandas Series of strings; series are
    a 2-D float array (n_samples, n_timesteps) or a 3-D one (n_samples,
    n_timesteps, n_channels), NaN marking a missing step.
    """
    if hasattr(X, "format") and hasattr(X, "tocsr"):
        raise TypeError(
            "Sparse input is not supported: pass texts or a dense array of series."
        )
    if isinstance(X, str | bytes):
        raise TypeError(
            "X is a single string; pass a list (or 1-D array, or Series) of "
            "strings, one per sequence."
        )
    if hasattr(X, "to_numpy") and getattr(X, "ndim", None) == 1:
        X = X.to_numpy(dtype=object)
    elif hasattr(X, "to_numpy"):
        X = X.to_numpy()
    if isinstance(X, list | tuple) and any(isinstance(v, str) for v in X):
        X = np.asarray(X, dtype=object)
    array = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if array.ndim == 1 and array.dtype.kind in "OUS":
        texts = list(array)
        bad = [v for v in texts if not isinstance(v, str)]
        if bad:
            raise TypeError(
                "Every text must be a string; got "
                f"{type(bad[0]).__name__} ({bad[0]!r}). Replace missing texts "
                "by '' or drop them."
            )
        return "text", texts, False
    if array.dtype.kind == "O" and array.ndim >= 2:
        array = array.astype(np.float64)  # a TypeError names a non-number
    if array.dtype.kind == "c":
        raise ValueError("Complex data not supported; pass real-valued series.")
    if array.dtype.kind not in "biuf":
        raise TypeError(
            "X must be a list of strings, or a numeric array of series of shape "
            f"(n_samples, n_timesteps[, n_channels]); got dtype {array.dtype}."
        )
    if array.ndim == 1:
        raise ValueError(
            f"X is 1-D with no strings (dtype {array.dtype}): pass texts as a list "
            "of strings, or series as a 2-D array (n_samples, n_timesteps). "
            "Reshape your data: X.reshape(1, -1) holds one univariate series."
        )
    squeezed = array.ndim == 2
    if squeezed:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(
            "Series must be a 2-D array (n_samples, n_timesteps) or a 3-D array "
            f"(n_samples, n_timesteps, n_channels); got {array.ndim} dimensions."
        )
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(
            f"0 feature(s) (shape={array.shape[:2] if squeezed else array.shape}) "
            "while a minimum of 1 is required."
        )
    array = array.astype(np.float64, copy=False)
    if np.isinf(array).any() or (np.abs(np.nan_to_num(array)) > MAX_VALUE).any():
        raise ValueError(
            f"X has infinite values or values beyond +-{MAX_VALUE:g}; mark a "
            "missing step with NaN."
        )
    return "series", array, squeezed


@dataclass
class SequenceSchema:
    """How sequences become tensors, learned from the training sequences.

    Parameters
    ----------
    kind : str
        ``"text"`` or ``"series"``.
    max_length : int
        Padded steps per sequence (text: tokens plus the end token).
    vocabulary : list of str
        Tokens in id order from :data:`~skvae._sequence.N_SPECIAL` (text).
    join : str
        What joins decoded tokens into a text ("" for characters).
        For a series, the model's steps: patches of ``patch`` time steps.
    vocabulary : list of str
        Tokens in id order from :data:`~skvae._sequence.N_SPECIAL` (text).
    join : str
        What joins decoded tokens into a text ("" for characters).
    loc, scale : ndarray of shape (n_channels,)
        Per-channel location and scale of a series.
    squeeze : bool
        Whether the series came as a 2-D array (returned alike).
    patch : int
        Consecutive time steps of a series that make one model step (its
        values side by side); the last patch is padded with missing values.
    n_timesteps : int
        Time steps of a series (0 for text).
    """

    kind: str
    max_length: int
    vocabulary: list[str] = field(default_factory=list)
    join: str = ""
    loc: np.ndarray | None = None
    scale: np.ndarray | None = None
    squeeze: bool = False
    patch: int = 1
    n_timesteps: int = 0

    @property
    def n_tokens(self) -> int:
        """Token ids, special tokens included (0 for series)."""
        return N_SPECIAL + len(self.vocabulary) if self.kind == "text" else 0

    @property
    def n_channels(self) -> int:
        """Channels of a series (0 for text)."""
        return 0 if self.kind == "text" else len(self.loc)

    @property
    def step_width(self) -> int:
        """Values per model step of a series: ``patch`` x channels (0 for text)."""
        return self.patch * self.n_channels

    @classmethod
    def fit(
        cls,
        kind: str,
        values,
        *,
        tokenizer: Callable | None = None,
        min_frequency: int = 1,
        max_length: int | None = None,
        squeeze: bool = False,
        patch_length: int | str = "auto",
    ) -> SequenceSchema:
        """The schema of training sequences (``kind``, ``values``: as_sequences).

        ``patch_length="auto"`` (series) is the smallest patch that leaves at
        most :data:`MAX_SERIES_STEPS` model steps.
        """
        if kind == "text":
            tokenized = [tokens_of(t, tokenizer) for t in values]
            counts = Counter(tok for toks in tokenized for tok in toks)
            vocabulary = sorted(t for t, c in counts.items() if c >= min_frequency)
            longest = max((len(t) for t in tokenized), default=0) + 1
            length = longest if max_length is None else int(max_length) + 1
            return cls(
                "text",
                max(1, length),
                vocabulary,
                "" if tokenizer is None else " ",
            )
        observed = ~np.isnan(values)
        if not observed.any(axis=(0, 1)).all():
            raise ValueError(
                "A channel of the series has no observed value in fit; drop it "
                "or pass data with values in every channel."
            )
        loc = np.nanmean(values, axis=(0, 1))
        scale = np.nanstd(values, axis=(0, 1))
        scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(loc)), scale, 1.0)
        n_timesteps = values.shape[1]
        if patch_length == "auto":
            patch = max(1, math.ceil(n_timesteps / MAX_SERIES_STEPS))
        else:
            patch = min(int(patch_length), n_timesteps)
        return cls(
            "series",
            math.ceil(n_timesteps / patch),
            loc=loc,
            scale=scale,
            squeeze=squeeze,
            patch=patch,
            n_timesteps=n_timesteps,
        )

    # ------------------------------------------------------------------ encode
    def encode(
        self, kind: str, values, tokenizer: Callable | None, device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded steps and their mask, on ``device``; warns on truncation."""
        if kind != self.kind:
            raise ValueError(
                f"This model was fitted on {self.kind}; got {kind}. Pass "
                + (
                    "a list of strings."
                    if self.kind == "text"
                    else "a numeric array of series."
                )
            )
        if kind == "text":
            return self._encode_text(values, tokenizer, device)
        return self._encode_series(values, device)

    def _encode_text(self, texts, tokenizer, device):
        ids = {tok: N_SPECIAL + i for i, tok in enumerate(self.vocabulary)}
        steps = self.max_length
        x = np.zeros((len(texts), steps), dtype=np.float32)
        mask = np.zeros((len(texts), steps), dtype=np.float32)
        cut = 0
        for i, text in enumerate(texts):
            toks = tokens_of(text, tokenizer)
            if len(toks) > steps - 1:
                cut += 1
                toks = toks[: steps - 1]
            row = [ids.get(t, UNK) for t in toks] + [EOS]
            x[i, : len(row)] = row
            mask[i, : len(row)] = 1.0
        if cut:
            warnings.warn(
                f"{cut} of {len(texts)} texts are longer than max_length="
                f"{steps - 1} tokens and were cut to that length; pass a larger "
                "max_length to fit to keep them whole.",
                UserWarning,
                stacklevel=4,
            )
        return (
            torch.as_tensor(x, device=device),
            torch.as_tensor(mask, device=device),
        )

    def _encode_series(self, values, device):
        if values.shape[1:] != (self.n_timesteps, self.n_channels):
            raise ValueError(
                f"Series must have {self.n_timesteps} steps and {self.n_channels} "
                f"channel(s), as in fit; got shape {values.shape[1:]}."
            )
        mask = ~np.isnan(values)
        scaled = np.where(mask, (values - self.loc) / self.scale, 0.0)
        if (np.abs(scaled) > np.finfo(np.float32).max / 4).any():
            raise ValueError(
                "X has values too far from the training data for float32, the "
                "model's precision."
            )
        return (
            torch.as_tensor(self._patches(scaled), dtype=torch.float32, device=device),
            torch.as_tensor(self._patches(mask), dtype=torch.float32, device=device),
        )

    def _patches(self, values: np.ndarray) -> np.ndarray:
        """(n, n_timesteps, C) to (n, max_length, patch * C), zero-padded."""
        n, steps, channels = values.shape
        if steps < self.max_length * self.patch:
            padded = np.zeros((n, self.max_length * self.patch, channels), values.dtype)
            padded[:, :steps] = values
            values = padded
        return values.reshape(n, self.max_length, self.patch * channels)

    def log_det_jacobian(self, mask: torch.Tensor) -> np.ndarray:
        """Per-row log|d x / d scaled| of the observed values (series), else 0.

        Subtracted from a log-density of scaled values, it gives the
        log-density in the data's units.
        """
        if self.kind == "text":
            return np.zeros(mask.shape[0])
        counts = mask.double().sum(1).cpu().numpy()  # (n, patch * C)
        return (counts * np.tile(np.log(self.scale), self.patch)).sum(-1)

    # ------------------------------------------------------------------ decode
    def decode(self, steps: torch.Tensor, mask: torch.Tensor):
        """Texts (1-D object array) or series in the fit's shape and units."""
        if self.kind == "text":
            out = np.empty(steps.shape[0], dtype=object)
            for i, row in enumerate(steps.cpu().numpy()):
                toks = []
                for t in row:
                    if t == EOS or t < N_SPECIAL:
                        break
                    toks.append(self.vocabulary[int(t) - N_SPECIAL])
                out[i] = self.join.join(toks)
            return out
        steps = steps.double().cpu().numpy()
        steps = steps.reshape(steps.shape[0], -1, self.n_channels)
        values = steps[:, : self.n_timesteps] * self.scale + self.loc
        return values[:, :, 0] if self.squeeze else values
