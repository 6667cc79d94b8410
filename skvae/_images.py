"""Image shapes of rows of pixels: one validator for the models and the plots."""

from __future__ import annotations

import math
from numbers import Integral


def resolve_image_shape(image_shape, n_features: int) -> tuple[int, int, int]:
    """``(channels, height, width)`` of rows of ``n_features`` pixels.

    Parameters
    ----------
    image_shape : tuple of int or None
        ``(height, width)`` or ``(channels, height, width)``; None infers a
        square single-channel image.
    n_features : int
        Pixels per row.

    Raises
    ------
    ValueError
        If the shape is malformed, does not match ``n_features``, or cannot
        be inferred.
    """
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"Cannot infer the image shape: {n_features} features is not a "
                "perfect square. Pass image_shape=(height, width) or (channels, "
                "height, width)."
            )
        return (1, side, side)
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    valid = len(shape) in (2, 3) and all(
        isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in shape
    )
    if isinstance(image_shape, str) or not valid:
        raise ValueError(
            "image_shape must be (height, width) or (channels, height, width) "
            f"with positive integers, got {image_shape!r}."
        )
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} has {math.prod(shape)} pixels, but the "
            f"rows have {n_features} features; their numbers must match."
        )
    return shape
