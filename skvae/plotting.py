"""Plots for fitted VAEs: latent space, images, reconstructions, training curves.

matplotlib is an optional dependency (``pip install "skvae[plotting]"``). It is
imported when one of these functions is called, never when ``skvae`` or
``skvae.plotting`` is imported.

Images are rows of flattened pixels, as everywhere in skvae: a row of
``height * width`` values, reshaped in C order.

Examples
--------
>>> import matplotlib.pyplot as plt
>>> from sklearn.datasets import load_digits
>>> from skvae.plotting import plot_samples
>>> X, _ = load_digits(return_X_y=True)
>>> fig = plot_samples(X[:20], n_cols=10)  # 8x8 shape inferred from 64 pixels
>>> len(fig.axes)
20
>>> plt.close(fig)
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._images import resolve_image_shape

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure, SubFigure
    from numpy.typing import ArrayLike

__all__ = [
    "plot_codebook_usage",
    "plot_interpolation",
    "plot_latent_space",
    "plot_loss_curve",
    "plot_reconstructions",
    "plot_samples",
]

#: Integer-valued labels with at most this many distinct values are drawn as
#: classes (one colour each, with a legend); more give a colorbar.
_MAX_CLASSES = 20

#: Size of one image of a grid, in inches (the longer side).
_IMAGE_INCHES = 0.9


def _pyplot():
    """Import and return ``matplotlib.pyplot``, or explain how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skvae.plotting needs matplotlib, an optional dependency. Install "
            'it with `pip install "skvae[plotting]"` (or `pip install '
            "matplotlib`)."
        ) from exc
    return plt


def _as_rows(X: ArrayLike, name: str) -> np.ndarray:
    """Return X as a 2-D float ndarray of rows (accepts DataFrames)."""
    if hasattr(X, "to_numpy"):
        X = X.to_numpy(dtype=float)
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D, one flattened image per row, of shape "
            f"(n_rows, n_features); got an array of shape {X.shape}."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no rows.")
    return X


def _first_rows(X: Any, n: int, *, ndim: int = 2) -> Any:
    """The first ``n`` rows of X, keeping its container (pandas or ndarray)."""
    if hasattr(X, "iloc"):
        return X.iloc[:n]
    X = np.asarray(X)
    if X.ndim != ndim:
        name = "X" if ndim == 2 else "y"
        raise ValueError(f"{name} must be {ndim}-D; got an array of shape {X.shape}.")
    return X[:n]


def _image_shape(n_features: int, image_shape: Any) -> tuple[int, int]:
    """(height, width) of single-channel images of ``n_features`` pixels."""
    channels, height, width = resolve_image_shape(image_shape, n_features)
    if channels != 1:
        raise ValueError(
            f"image_shape={image_shape!r} has {channels} channels; the plots show "
            "single-channel images."
        )
    return height, width


def _check_positive_int(value: Any, name: str) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
    return int(value)


def _value_range(*arrays: np.ndarray) -> tuple[float, float]:
    """Common finite (min, max) of arrays, for one grey scale across images."""
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays])
    if finite.size == 0:
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


def _grid_figure(plt: Any, n_rows: int, n_cols: int, shape: tuple[int, int]):
    """A new figure sized for an ``n_rows`` x ``n_cols`` grid of images."""
    height, width = shape
    scale = _IMAGE_INCHES / max(height, width)
    return plt.figure(
        figsize=(
            max(n_cols * width * scale * 1.05, 1.0),
            max(n_rows * height * scale * 1.05, 1.0),
        )
    )


def _hide_frame(ax: Axes) -> None:
    """No ticks and no frame, but keep axis labels visible (unlike axis off)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def plot_latent_space(
    estimator: BaseEstimator,
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    ax: Axes | None = None,
    **scatter_kwargs: Any,
) -> Axes:
    """Scatter plot of the latent codes ``estimator.transform(X)``.

    With ``n_components == 2`` the two latent dimensions are the axes. With
    more, the codes are projected on their first two principal components
    (:class:`sklearn.decomposition.PCA` fitted on the codes of X), and the
    axis labels say so, with the share of variance each keeps. With
    ``n_components == 1`` the code is on the x-axis and the row index of X on
    the y-axis, which only spreads the points out and carries no meaning.

    Parameters
    ----------
    estimator : VAETransformer
        A fitted estimator with a ``transform`` method returning latent codes
        of shape (n_samples, n_components).
    X : array-like or DataFrame of shape (n_samples, n_features)
        Rows to encode, in the format the estimator was fitted on.
    y : array-like of shape (n_samples,), default=None
        Labels to colour the points by. Strings, booleans, categories and
        integer-valued labels with at most 20 distinct values are drawn as
        classes, one colour each (``tab10`` or ``tab20``) with a legend; other
        numbers (a continuous target) are mapped through a colormap with a
        colorbar. The name of a pandas Series titles the legend or colorbar.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is made when None.
    **scatter_kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter` (for example ``s``,
        ``alpha``, ``marker``, ``cmap``). ``c`` may only be given without y.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on. The points are ``ax.collections[0]``, in the row
        order of X.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import plot_latent_space
    >>> X, y = load_digits(return_X_y=True)
    >>> vae = VAETransformer(n_components=2, max_iter=5, random_state=0)
    >>> ax = plot_latent_space(vae.fit(X / 16), X / 16, y)
    >>> len(ax.collections[0].get_offsets())
    1797
    >>> plt.close(ax.figure)
    """
    plt = _pyplot()
    import matplotlib as mpl
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D

    Z = np.asarray(estimator.transform(X), dtype=float)
    if Z.ndim != 2 or Z.shape[1] < 1:
        raise ValueError(
            f"estimator.transform returned an array of shape {Z.shape}; "
            "expected (n_samples, n_components)."
        )
    n, k = Z.shape
    if k == 1:
        xy = np.column_stack([Z[:, 0], np.arange(n)])
        labels = ("latent dimension 0", "row index (spreads points only)")
    elif k == 2:
        xy = Z
        labels = ("latent dimension 0", "latent dimension 1")
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(Z)
        xy = pca.transform(Z)
        ratio = pca.explained_variance_ratio_
        labels = tuple(
            f"PCA {i + 1} of the {k}-d latent codes ({ratio[i]:.0%} of variance)"
            for i in range(2)
        )

    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 4.5), layout="constrained")
    kwargs = {"s": 12, "linewidths": 0, "alpha": 0.8, **scatter_kwargs}

    if y is None:
        ax.scatter(xy[:, 0], xy[:, 1], **kwargs)
    else:
        if "c" in kwargs or "color" in kwargs:
            raise ValueError(
                "Pass either y (to colour by label) or c / color, not both."
            )
        title = getattr(y, "name", None)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(
                f"y must be 1-D with one label per row of X ({n}); got shape {y.shape}."
            )
        cmap = kwargs.pop("cmap", None)
        if isinstance(cmap, str):
            cmap = mpl.colormaps[cmap]
        if _is_categorical(y):
            classes, codes = np.unique(y, return_inverse=True)
            colors = _class_colors(len(classes), cmap, mpl, ListedColormap)
            ax.scatter(xy[:, 0], xy[:, 1], c=colors[codes], **kwargs)
            marker = kwargs.get("marker", "o")
            handles = [
                Line2D(
                    [],
                    [],
                    linestyle="",
                    marker=marker,
                    color=color,
                    label=str(label),
                )
                for label, color in zip(classes, colors, strict=True)
            ]
            ax.legend(
                handles=handles,
                title=None if title is None else str(title),
                loc="center left",
                bbox_to_anchor=(1.01, 0.5),
                fontsize="small",
                frameon=False,
            )
        else:
            points = ax.scatter(
                xy[:, 0], xy[:, 1], c=y.astype(float), cmap=cmap, **kwargs
            )
            ax.figure.colorbar(
                points, ax=ax, label="y" if title is None else str(title)
            )
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    return ax


def _is_categorical(y: np.ndarray) -> bool:
    """Whether labels are classes (legend) rather than a continuous target."""
    if y.dtype.kind in "biuf":
        if y.dtype.kind == "b":
            return True
        values = y.astype(float)
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            return False
        return np.unique(values).size <= _MAX_CLASSES
    return True


def _class_colors(
    n_classes: int, cmap: Colormap | None, mpl: Any, listed: type
) -> np.ndarray:
    """RGBA colours, one row per class."""
    if cmap is None:
        if n_classes <= 10:
            cmap = mpl.colormaps["tab10"]
        elif n_classes <= 20:
            cmap = mpl.colormaps["tab20"]
        else:
            cmap = mpl.colormaps["viridis"]
    if isinstance(cmap, listed) and cmap.N >= n_classes:
        return cmap(np.arange(n_classes))
    return cmap(np.linspace(0.0, 1.0, n_classes))


def plot_samples(
    X: ArrayLike,
    *,
    image_shape: tuple[int, int] | None = None,
    n_cols: int = 10,
    fig: Figure | SubFigure | None = None,
    cmap: str | Colormap = "gray",
) -> Figure | SubFigure:
    """Show rows of flattened pixels as a grid of images.

    All images share one grey scale, from the smallest to the largest finite
    value of X, so that brightness compares across images. NaN pixels are
    left blank.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_images, n_features)
        One image per row, for example ``estimator.sample(20,
        return_mean=True)``.
    image_shape : tuple of (int, int), default=None
        ``(height, width)`` of an image, with ``height * width ==
        n_features``. None infers a square when n_features is a perfect
        square (64 gives 8x8, 784 gives 28x28).
    n_cols : int, default=10
        Number of images per row of the grid.
    fig : matplotlib Figure or SubFigure, default=None
        An empty figure to draw into; a new one is made when None.
    cmap : str or Colormap, default="gray"
        Colormap of the images.

    Returns
    -------
    fig : matplotlib Figure or SubFigure
        The figure, with one axes per image in row order (``fig.axes``).

    Raises
    ------
    ValueError
        When image_shape does not match n_features, or cannot be inferred.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from skvae.plotting import plot_samples
    >>> X, _ = load_digits(return_X_y=True)
    >>> fig = plot_samples(X[:15], n_cols=5)
    >>> len(fig.axes)
    15
    >>> plt.close(fig)
    """
    plt = _pyplot()
    X = _as_rows(X, "X")
    shape = _image_shape(X.shape[1], image_shape)
    n_cols = _check_positive_int(n_cols, "n_cols")
    n = X.shape[0]
    n_cols = min(n_cols, n)
    n_rows = math.ceil(n / n_cols)
    if fig is None:
        fig = _grid_figure(plt, n_rows, n_cols, shape)
    vmin, vmax = _value_range(X)
    axes = fig.subplots(
        n_rows,
        n_cols,
        squeeze=False,
        gridspec_kw={
            "wspace": 0.05,
            "hspace": 0.05,
            "left": 0.01,
            "right": 0.99,
            "bottom": 0.01,
            "top": 0.99,
        },
    )
    for i, ax in enumerate(axes.flat):
        if i < n:
            ax.imshow(
                X[i].reshape(shape),
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                interpolation="nearest",
            )
            ax.set_axis_off()
        else:
            fig.delaxes(ax)
    return fig


def plot_reconstructions(
    estimator: BaseEstimator,
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    n: int = 10,
    image_shape: tuple[int, int] | None = None,
    fig: Figure | SubFigure | None = None,
    cmap: str | Colormap = "gray",
) -> Figure | SubFigure:
    """Show images next to their reconstructions by the model.

    The top row shows the first ``n`` rows of X, the bottom row
    ``estimator.inverse_transform(estimator.transform(X))``: the decoder mean
    at the posterior mean of each row's code. Both rows share one grey scale.

    Parameters
    ----------
    estimator : VAETransformer
        A fitted estimator with ``transform`` and ``inverse_transform``.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Images, one per row, in the format the estimator was fitted on.
    y : array-like of shape (n_samples,), default=None
        Classes of the rows of X, for a conditional model whose decoder needs
        them: ``y[:n]`` is passed to ``inverse_transform``. Leave None for an
        unconditional model.
    n : int, default=10
        Number of images shown (the first ``n`` rows of X; fewer if X has
        fewer rows).
    image_shape : tuple of (int, int), default=None
        ``(height, width)`` of an image; None infers a square.
    fig : matplotlib Figure or SubFigure, default=None
        An empty figure to draw into; a new one is made when None.
    cmap : str or Colormap, default="gray"
        Colormap of the images.

    Returns
    -------
    fig : matplotlib Figure or SubFigure
        The figure, with ``2 * n`` axes: the originals first, then the
        reconstructions, each in row order.

    Raises
    ------
    ValueError
        When image_shape does not match n_features, or cannot be inferred.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import plot_reconstructions
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VAETransformer(n_components=8, max_iter=5, random_state=0)
    >>> fig = plot_reconstructions(vae.fit(X / 16), X / 16, n=8)
    >>> len(fig.axes)
    16
    >>> plt.close(fig)
    """
    plt = _pyplot()
    n = _check_positive_int(n, "n")
    X = _first_rows(X, n)
    originals = _as_rows(X, "X")
    shape = _image_shape(originals.shape[1], image_shape)
    Z = estimator.transform(X)
    if y is None:
        decoded = estimator.inverse_transform(Z)
    else:
        decoded = estimator.inverse_transform(Z, y=_first_rows(y, n, ndim=1))
    reconstructions = _as_rows(decoded, "the reconstructions")
    n = originals.shape[0]
    if fig is None:
        fig = _grid_figure(plt, 2, n, shape)
        fig.set_figwidth(fig.get_figwidth() + 0.3)
    vmin, vmax = _value_range(originals, reconstructions)
    left = 0.3 / fig.get_figwidth() if isinstance(fig, plt.Figure) else 0.05
    axes = fig.subplots(
        2,
        n,
        squeeze=False,
        gridspec_kw={
            "wspace": 0.05,
            "hspace": 0.05,
            "left": left,
            "right": 0.99,
            "bottom": 0.01,
            "top": 0.99,
        },
    )
    for row, images in enumerate((originals, reconstructions)):
        for i in range(n):
            ax = axes[row, i]
            ax.imshow(
                images[i].reshape(shape),
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                interpolation="nearest",
            )
            _hide_frame(ax)
    axes[0, 0].set_ylabel("original", fontsize="small")
    axes[1, 0].set_ylabel("decoded", fontsize="small")
    return fig


def plot_interpolation(
    path: ArrayLike,
    *,
    image_shape: tuple[int, int] | None = None,
    ax: Axes | None = None,
    cmap: str | Colormap = "gray",
) -> Axes:
    """Show a decoded path through the latent space as one strip of images.

    The images are laid side by side in one image, with a thin blank gap
    between steps, and one x tick per step (every few steps for long paths).

    Parameters
    ----------
    path : array-like or DataFrame of shape (n_steps, n_features)
        Decoded rows along the path, in order, for example
        ``estimator.inverse_transform(Z_path)`` for codes ``Z_path`` on a
        line between two rows' codes.
    image_shape : tuple of (int, int), default=None
        ``(height, width)`` of an image; None infers a square.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is made when None.
    cmap : str or Colormap, default="gray"
        Colormap of the images; all steps share one grey scale.

    Returns
    -------
    ax : matplotlib Axes
        The axes; the strip is ``ax.images[0]``.

    Raises
    ------
    ValueError
        When image_shape does not match n_features, or cannot be inferred.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae.plotting import plot_interpolation
    >>> X, _ = load_digits(return_X_y=True)
    >>> t = np.linspace(0, 1, 7)[:, None]
    >>> ax = plot_interpolation((1 - t) * X[0] + t * X[1])
    >>> ax.images[0].get_array().shape
    (8, 62)
    >>> plt.close(ax.figure)
    """
    plt = _pyplot()
    path = _as_rows(path, "path")
    height, width = _image_shape(path.shape[1], image_shape)
    n_steps = path.shape[0]
    gap = max(1, width // 8)
    step = width + gap
    strip = np.full((height, n_steps * step - gap), np.nan)
    for i in range(n_steps):
        strip[:, i * step : i * step + width] = path[i].reshape(height, width)
    if ax is None:
        scale = _IMAGE_INCHES / max(height, width)
        _, ax = plt.subplots(
            figsize=(max(strip.shape[1] * scale + 0.4, 2.0), height * scale + 0.6),
            layout="constrained",
        )
    vmin, vmax = _value_range(path)
    ax.imshow(strip, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    stride = math.ceil(n_steps / 20)
    ticks = np.arange(0, n_steps, stride)
    ax.set_xticks(ticks * step + (width - 1) / 2)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(axis="x", length=0)
    ax.set_xlabel("step")
    return ax


def plot_loss_curve(estimator: BaseEstimator, *, ax: Axes | None = None) -> Axes:
    """Plot the training loss per epoch, and the validation curve if any.

    The training curve is ``loss_curve_``: the negative ELBO per row (for
    :class:`~skvae.VAEImputer`, the negative MIWAE bound per row), averaged
    over each epoch's minibatches, in nats per row. Numeric columns are
    standardized inside the estimator, so for Gaussian columns these nats
    are on the standardized scale and differ from ``-score_samples(X)``,
    which is in the original units.

    When the estimator was fitted with early stopping, ``validation_scores_``
    is drawn too, with a dotted line at its best epoch (whose weights the
    estimator keeps):

    - :class:`~skvae.VAETransformer`, :class:`~skvae.VAEOutlierDetector`: the
      validation ELBO per row, drawn negated (as a loss, lower is better) on
      the same axes as the training loss.
    - :class:`~skvae.VAEImputer`: the negative imputation RMSE of the hidden
      observed entries, drawn as the RMSE (standardized units) on a second
      y-axis on the right.
    - Any other estimator with ``loss_curve_`` and ``validation_scores_``
      (such as scikit-learn's MLP models): the raw validation score on a
      second y-axis.

    Parameters
    ----------
    estimator : VAETransformer, VAEOutlierDetector or VAEImputer
        A fitted estimator with a ``loss_curve_`` attribute.
        ``validation_scores_`` may be absent or None.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is made when None.

    Returns
    -------
    ax : matplotlib Axes
        The axes of the training loss; its first line is ``loss_curve_``
        against the epochs 1, 2, ... A second y-axis, when one is drawn, is
        a twin of it (``ax.get_shared_x_axes()``) and holds the legend.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import plot_loss_curve
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VAETransformer(max_iter=5, early_stopping=True, random_state=0)
    >>> ax = plot_loss_curve(vae.fit(X / 16))
    >>> len(ax.lines[0].get_ydata())
    5
    >>> plt.close(ax.figure)
    """
    plt = _pyplot()
    check_is_fitted(estimator, "loss_curve_")
    loss = np.asarray(estimator.loss_curve_, dtype=float)
    scores = getattr(estimator, "validation_scores_", None)
    scores = None if scores is None else np.asarray(scores, dtype=float)
    if scores is not None and scores.size == 0:
        scores = None
    labels = getattr(estimator, "_curve_labels", None)

    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 4.0), layout="constrained")
    marker = "o" if loss.size < 2 else None
    if labels is not None:
        objective = labels["objective"]
        train_label, ylabel = f"training ({objective})", f"{objective} (nats per row)"
    else:
        train_label, ylabel = "training loss", "training loss"
    ax.plot(np.arange(1, loss.size + 1), loss, marker=marker, label=train_label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)

    legend_ax = ax
    if scores is not None:
        epochs = np.arange(1, scores.size + 1)
        marker = "o" if scores.size < 2 else None
        if labels is None:
            values, label, axis = scores, "validation score", "validation score"
        else:
            values = labels["validation_sign"] * scores
            label = f"validation {labels['validation']}"
            axis = labels["validation_axis"]
        if axis is not None:
            legend_ax = ax.twinx()
            legend_ax.set_ylabel(axis)
        legend_ax.plot(epochs, values, marker=marker, color="C1", label=label)
        if labels is not None:
            best = int(np.argmax(scores)) + 1
            legend_ax.axvline(
                best, color="0.4", linestyle=":", label=f"best epoch ({best}), kept"
            )
    handles, labels = ax.get_legend_handles_labels()
    if legend_ax is not ax:
        more_handles, more_labels = legend_ax.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    loc = "best" if legend_ax is ax else "upper right"
    legend_ax.legend(handles, labels, loc=loc)
    return ax


def plot_codebook_usage(estimator: BaseEstimator, *, ax: Axes | None = None) -> Axes:
    """Bar chart of how often each codebook entry is used, most used first.

    The bars are ``code_counts_`` of a fitted
    :class:`~skvae.VQVAETransformer` (uses over every code position of the
    training rows) sorted in decreasing order; the title gives
    ``codebook_usage_`` (share of entries used) and ``perplexity_``. A flat
    chart means an evenly used codebook; a long tail of empty bars, entries
    that fell out of use.

    Parameters
    ----------
    estimator : VQVAETransformer
        A fitted estimator with ``code_counts_``.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is made when None.

    Returns
    -------
    ax : matplotlib Axes
        Its bars (``ax.patches``) are the sorted counts.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VQVAETransformer
    >>> from skvae.plotting import plot_codebook_usage
    >>> X, _ = load_digits(return_X_y=True)
    >>> vq = VQVAETransformer(n_embeddings=16, max_iter=3, random_state=0).fit(X)
    >>> ax = plot_codebook_usage(vq)
    >>> len(ax.patches)
    16
    >>> plt.close(ax.figure)
    """
    plt = _pyplot()
    check_is_fitted(estimator, "code_counts_")
    counts = np.sort(np.asarray(estimator.code_counts_, dtype=float))[::-1]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.5), layout="constrained")
    ax.bar(np.arange(counts.size), counts, width=1.0, color="C0")
    ax.set_xlabel("codebook entry, most used first")
    ax.set_ylabel("uses in the training rows")
    ax.set_title(
        f"{estimator.codebook_usage_:.0%} of {counts.size} entries used, "
        f"perplexity {estimator.perplexity_:.1f}"
    )
    ax.set_xlim(-0.5, counts.size - 0.5)
    return ax
