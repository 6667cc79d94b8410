"""Encoder and decoder networks, built on the meta device and seeded locally.

:func:`build_networks` returns the encoder (rows, with the missingness mask
when the module has a mask channel, to the latent layer's inputs) and the
decoder (latent code, with the condition of a conditional model, to the
likelihoods' parameters): fully connected (:func:`mlp`) or convolutional
(:mod:`skvae._conv`). :func:`initialize` draws every weight from a local
generator, as torch's default initialisation would. Torch only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._conv import ConvDecoder, ConvEncoder, feature_map_size, feature_shape

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Fully connected network; no activation after the last layer.

    Layers are created on the meta device (no random numbers are drawn);
    materialise them with ``to_empty`` and call :func:`initialize`.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(n_in, n_out, device="meta"))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def build_networks(
    n_inputs: int,
    n_latent_inputs: int,
    n_decoder_inputs: int,
    n_params: int,
    *,
    hidden_layer_sizes: Sequence[int],
    activation: str,
    image_shape: Sequence[int] | None = None,
    image_channels: int = 1,
) -> tuple[nn.Module, nn.Module, int]:
    """Encoder, decoder, and the floats per row of the largest feature map.

    Parameters
    ----------
    n_inputs : int
        Encoder input width (data columns, plus mask columns if any).
    n_latent_inputs : int
        Encoder output width (what the latent layer reads).
    n_decoder_inputs : int
        Decoder input width (latent code plus condition).
    n_params : int
        Decoder output width (the likelihoods' parameters).
    hidden_layer_sizes : sequence of int
        Encoder hidden widths of an MLP; the decoder mirrors them.
    activation : str
        Hidden activation name (:data:`ACTIVATIONS`).
    image_shape : sequence of int, optional
        ``(channels, height, width)``: convolutional networks instead, each
        joined to the latent code by one linear layer.
    image_channels : int, default=1
        Input channels per image channel (2 when the mask comes along).
    """
    if image_shape is None:
        hidden = list(hidden_layer_sizes)
        encoder = mlp([n_inputs, *hidden, n_latent_inputs], activation)
        decoder = mlp([n_decoder_inputs, *hidden[::-1], n_params], activation)
        return encoder, decoder, 0
    n_pixels = math.prod(image_shape)
    if n_params % n_pixels:
        raise ValueError(
            "a convolutional decoder needs the same number of outputs per pixel."
        )
    in_channels = image_shape[0] * image_channels
    n_flat = math.prod(feature_shape(image_shape))
    act = ACTIVATIONS[activation]
    encoder = ConvEncoder(
        image_shape, in_channels, mlp([n_flat, n_latent_inputs], activation), act
    )
    decoder = ConvDecoder(
        image_shape,
        mlp([n_decoder_inputs, n_flat], activation),
        act,
        params_per_pixel=n_params // n_pixels,
    )
    return encoder, decoder, feature_map_size(image_shape, in_channels)


def initialize(module: nn.Module, generator: torch.Generator | None) -> None:
    """Initialise like torch's default of every linear and convolution layer.

    Drawn from ``generator`` (the global generator is never touched), in the
    order of ``module.modules()``.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            # The fan-in: in_features, or weight.shape[1] times the kernel
            # area for both kinds of convolution.
            fan_in = layer.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            with torch.no_grad():
                layer.bias.uniform_(-bound, bound, generator=generator)
