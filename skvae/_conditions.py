"""Class labels of a conditional estimator, and small argument checks.

:class:`ClassConditioned` is the part of an estimator that reads ``y``: the
classes seen in fit, their counts and frequencies, and the one-hot condition
of each row. It answers :meth:`~skvae._base._BaseVAE._fit_inputs` for
estimators with a ``conditional`` parameter.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ._utils import draw_seeds


class ClassConditioned:
    """Reads the class labels of a model with a ``conditional`` parameter.

    The fitted module's ``n_conditions`` (0: unconditional) tells whether the
    fit was conditional; ``classes_``, ``class_count_`` and ``class_prior_``
    are kept on the estimator.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        flag = self.conditional  # not validated yet: only a true bool counts
        tags.target_tags.required = isinstance(flag, bool | np.bool_) and bool(flag)
        return tags

    def _is_conditional_fit(self) -> bool:
        """Whether the fitted module decodes from a class condition."""
        return self.module_.n_conditions > 0

    def _fit_inputs(self, X, y, *, first: bool, classes=None, facts=None):
        n_samples = X.shape[0]
        if not self.conditional:
            if first:
                for name in ("classes_", "class_count_", "class_prior_"):
                    self.__dict__.pop(name, None)
            elif self._is_conditional_fit():
                raise ValueError(
                    f"This {type(self).__name__} was first fitted with "
                    "conditional=True; partial_fit cannot continue with "
                    "conditional=False. Call fit to start over."
                )
            return None, None
        if not first and not self._is_conditional_fit():
            raise ValueError(
                f"This {type(self).__name__} was first fitted with conditional=False; "
                "partial_fit cannot continue with conditional=True. Call fit to "
                "start over."
            )
        if y is None:
            raise ValueError(
                f"{type(self).__name__}(conditional=True) requires y to be passed, but "
                "the target y is None: fit and partial_fit need the class label "
                "of each row of X."
            )
        y = column_or_1d(y, warn=True)
        if y.shape[0] != n_samples:
            raise ValueError(f"y has {y.shape[0]} labels, but X has {n_samples} rows.")
        check_classification_targets(y)
        if first:
            self.classes_ = sorted_labels(y if classes is None else classes)
            self.class_count_ = np.zeros(len(self.classes_))
        elif classes is not None and not same_labels(classes, self.classes_):
            raise ValueError(
                f"classes={sorted_labels(classes).tolist()!r} is not the same "
                f"as on the first call to partial_fit: {self.classes_.tolist()!r}."
            )
        index = self._class_index(y, n_samples, method="partial_fit")
        self.class_count_ = self.class_count_ + np.bincount(
            index, minlength=len(self.classes_)
        )
        self.class_prior_ = self.class_count_ / self.class_count_.sum()
        return None, self._one_hot(index)

    def _class_index(self, y, n_rows: int, *, method: str) -> np.ndarray:
        """Position in ``classes_`` of each label; a scalar y is broadcast."""
        labels = np.asarray(y)
        if labels.ndim == 0:
            labels = np.repeat(labels, n_rows)
        labels = column_or_1d(labels)
        if labels.shape[0] != n_rows:
            raise ValueError(
                f"y has {labels.shape[0]} labels for {n_rows} rows; pass one "
                "label per row or a single label for all of them."
            )
        try:
            unique, inverse = np.unique(labels, return_inverse=True)
        except TypeError as exc:
            raise ValueError(
                f"y mixes label types that cannot be compared: {exc}"
            ) from exc
        lookup = {label: i for i, label in enumerate(self.classes_.tolist())}
        unknown = [label for label in unique.tolist() if label not in lookup]
        if unknown:
            hint = (
                " Pass every class in classes= on the first call to partial_fit."
                if method == "partial_fit"
                else ""
            )
            raise ValueError(
                f"y contains labels not seen in fit: {unknown[:10]!r}; the "
                f"classes are {self.classes_.tolist()[:20]!r}.{hint}"
            )
        codes = np.array([lookup[label] for label in unique.tolist()], dtype=np.intp)
        return codes[inverse.reshape(-1)]

    def _one_hot(self, index: np.ndarray) -> np.ndarray:
        return np.eye(len(self.classes_), dtype=np.float32)[index]

    def _condition(self, y, n_rows: int, *, method: str) -> torch.Tensor | None:
        """Decoder condition for ``y`` (None for an unconditional model)."""
        if not self._is_conditional_fit():
            if y is not None:
                raise ValueError("y is only accepted by a conditional model.")
            return None
        if y is None:
            raise ValueError(
                f"This {type(self).__name__} is conditional: {method} needs y, "
                "the class of each row (a label of classes_, or one label for all "
                "rows)."
            )
        index = self._class_index(y, n_rows, method=method)
        return torch.from_numpy(self._one_hot(index))

    def _draw_generator(self, random_state) -> torch.Generator:
        seed = draw_seeds(
            self.random_state if random_state is None else random_state, 1
        )[0]
        return torch.Generator().manual_seed(seed)


def int_in_range(value, name: str, low: int, high: int | None = None, why=""):
    """``value`` as an int in ``[low, high]``, or a ValueError naming it."""
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}.")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high + 1})"
        raise ValueError(f"{name} must be {bounds}{why}, got {value}.")
    return int(value)


def sorted_labels(labels) -> np.ndarray:
    """Sorted unique labels, with a clear error for incomparable types."""
    labels = column_or_1d(np.asarray(labels))
    try:
        return np.unique(labels)
    except TypeError as exc:
        raise ValueError(f"y mixes label types that cannot be compared: {exc}") from exc


def same_labels(a, b: np.ndarray) -> bool:
    a = sorted_labels(a)
    return a.shape == b.shape and a.tolist() == b.tolist()


def one_row(x, name: str):
    """``x`` as a one-row matrix or DataFrame; a ValueError naming it otherwise.

    Accepts shape (n_features,) or (1, n_features), a one-row DataFrame or a
    pandas Series.
    """
    if hasattr(x, "to_frame") and getattr(x, "ndim", None) == 1:
        x = x.to_frame().T.infer_objects()  # a pandas Series: one row
    elif not hasattr(x, "columns"):
        x = np.asarray(x)
        if x.ndim == 1:
            x = x.reshape(1, -1)
    shape = tuple(x.shape)
    if len(shape) != 2 or shape[0] != 1:
        raise ValueError(
            f"{name} must be a single row, of shape (n_features,) or "
            f"(1, n_features); got shape {shape}."
        )
    return x
