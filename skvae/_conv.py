"""Convolutional encoder and decoder for images stored as flat rows.

Torch only. Both networks take and return flat tensors, so that
:class:`~skvae._module.VAEModule` uses them exactly like its fully connected
networks: the encoder maps ``(n, in_channels * H * W)`` to its dense head's
output, the decoder maps ``(..., n_latent)`` to ``(..., channels * H * W)``,
one output per pixel in the row's own (channel, row, column) order.

Each of the :data:`CONV_CHANNELS` levels is a 3x3 convolution with stride 2
and padding 1, which halves the height and width (rounding up). The decoder
mirrors the encoder with transposed convolutions whose output padding restores
the exact sizes, odd ones included. Between the innermost feature map and
the latent code sits a dense network (the "head"; one linear layer in
:class:`~skvae._module.VAEModule`), built by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

#: Output channels of the convolution levels, from the image inwards.
CONV_CHANNELS = (32, 64)
_KERNEL, _STRIDE, _PADDING = 3, 2, 1


def _halve(size: int) -> int:
    """Output size of one stride-2, 3x3, padding-1 convolution."""
    return (size + 1) // 2


def spatial_sizes(
    image_shape: Sequence[int], n_levels: int = len(CONV_CHANNELS)
) -> list[tuple[int, int]]:
    """Height and width of the image and of each feature map, outermost first."""
    _, height, width = image_shape
    sizes = [(height, width)]
    for _ in range(n_levels):
        h, w = sizes[-1]
        sizes.append((_halve(h), _halve(w)))
    return sizes


def feature_shape(
    image_shape: Sequence[int], channels: Sequence[int] = CONV_CHANNELS
) -> tuple[int, int, int]:
    """Shape (C, h, w) of the innermost feature map."""
    h, w = spatial_sizes(image_shape, len(channels))[-1]
    return (channels[-1], h, w)


def feature_map_size(
    image_shape: Sequence[int],
    in_channels: int,
    channels: Sequence[int] = CONV_CHANNELS,
) -> int:
    """Floats per image in the largest tensor either network produces."""
    sizes = spatial_sizes(image_shape, len(channels))
    maps = [in_channels * sizes[0][0] * sizes[0][1]]
    maps += [c * h * w for c, (h, w) in zip(channels, sizes[1:], strict=True)]
    return max(maps)


class ConvEncoder(nn.Module):
    """Strided convolutions, then a dense head; flat rows in, flat codes out.

    Parameters
    ----------
    image_shape : tuple of int
        (channels, height, width) of one image.
    in_channels : int
        Channels fed to the first convolution: the image's, or twice as many
        when the missingness mask comes as extra channels.
    head : nn.Module
        Dense network from the flattened innermost feature map
        (``math.prod(feature_shape(image_shape, channels))`` values) to the
        output.
    activation : callable
        Factory of the activation module put after every convolution.
    channels : sequence of int, default=CONV_CHANNELS
        Output channels of the convolution levels.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        in_channels: int,
        head: nn.Module,
        activation: Callable[[], nn.Module],
        channels: Sequence[int] = CONV_CHANNELS,
    ) -> None:
        super().__init__()
        self.in_shape = (in_channels, *image_shape[1:])
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            layers.append(
                nn.Conv2d(c_in, c_out, _KERNEL, _STRIDE, _PADDING, device="meta")
            )
            layers.append(activation())
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map rows of shape (..., in_channels * H * W) to the head's output."""
        lead = x.shape[:-1]
        images = x.reshape(math.prod(lead), *self.in_shape)
        h = self.features(images).flatten(1)
        out = self.head(h)
        return out.reshape(*lead, out.shape[-1])


class ConvDecoder(nn.Module):
    """A dense head, then transposed convolutions up to the per-pixel outputs.

    Parameters
    ----------
    image_shape : tuple of int
        (channels, height, width) of one image; the output has
        ``params_per_pixel * channels * height * width`` values per row.
    head : nn.Module
        Dense network from the decoder input (latent code, plus condition) to
        the flattened innermost feature map (``math.prod(feature_shape(...))``
        values); an activation follows it.
    activation : callable
        Factory of the activation module put after the head and after every
        transposed convolution but the last.
    channels : sequence of int, default=CONV_CHANNELS
        The encoder's channels; the decoder runs through them in reverse.
    params_per_pixel : int, default=1
        Likelihood parameters per pixel (2 for a Gaussian with a decoded
        variance).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        head: nn.Module,
        activation: Callable[[], nn.Module],
        channels: Sequence[int] = CONV_CHANNELS,
        params_per_pixel: int = 1,
    ) -> None:
        super().__init__()
        self.head = head
        self.n_outputs = math.prod(image_shape) * params_per_pixel
        self.top_shape = feature_shape(image_shape, channels)
        sizes = spatial_sizes(image_shape, len(channels))[::-1]  # innermost first
        outs = [*list(channels)[-2::-1], image_shape[0] * params_per_pixel]
        layers: list[nn.Module] = [activation()]
        c_in = channels[-1]
        for i, c_out in enumerate(outs):
            (h_in, w_in), (h_out, w_out) = sizes[i], sizes[i + 1]
            # (in - 1) * stride - 2 * padding + kernel = 2 * in - 1, plus this.
            extra = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))
            layers.append(
                nn.ConvTranspose2d(
                    c_in,
                    c_out,
                    _KERNEL,
                    _STRIDE,
                    _PADDING,
                    output_padding=extra,
                    device="meta",
                )
            )
            if i < len(outs) - 1:
                layers.append(activation())
            c_in = c_out
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map (..., n_latent) to outputs of shape (..., P * C * H * W).

        With ``P = params_per_pixel`` > 1 the output channels are P groups of
        C, so the flattened row holds every pixel's first parameter, then
        every pixel's second one, as the likelihoods expect.
        """
        lead = z.shape[:-1]
        h = self.head(z.reshape(math.prod(lead), z.shape[-1]))
        out = self.features(h.reshape(h.shape[0], *self.top_shape))
        return out.reshape(*lead, self.n_outputs)
