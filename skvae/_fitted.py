"""What a fit produced, and every way of using it.

:class:`FittedVAE` holds the data schema (and the DataFrame schema when fit
saw one), the trained module and the seed of the fixed score draws. It owns
every inference path: encoding, posterior means, decoding, and one chunked
importance-sampling map behind scores, imputations, posterior draws and
per-feature explanations, with one chunk policy (:mod:`skvae._chunks`) and
one precision and device policy (:meth:`FittedVAE.running`). It takes
validated numeric matrices; the estimators own input checking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from . import _estimates
from ._chunks import block_rows, chunks, rows_per_chunk
from ._data import TabularSchema
from ._frame import FrameSchema
from ._module import VAEModule

#: The estimates :meth:`FittedVAE.importance_map` runs, by name.
ESTIMATES: dict[str, Callable] = {
    "log_marginal": _estimates.log_marginal,
    "reconstruction_log_prob": _estimates.reconstruction_log_prob,
    "feature_log_likelihood": _estimates.feature_log_likelihood,
    "impute": _estimates.impute,
    "sample_missing": _estimates.sample_missing,
}


def pad_rows(t: torch.Tensor | None, size: int) -> torch.Tensor | None:
    """``t`` with zero rows appended up to ``size`` rows (None stays None)."""
    if t is None or t.shape[0] == size:
        return t
    return torch.cat([t, t.new_zeros((size - t.shape[0], *t.shape[1:]))])


@dataclass
class FittedVAE:
    """A fitted VAE: schema, module and fixed score draws.

    Parameters
    ----------
    schema : TabularSchema
        Column kinds, block order and standardization of the model columns.
    module : VAEModule
        The trained module, kept on the CPU between calls.
    score_seed : int
        Seed of the standard-normal draws shared by every row's estimates.
    train_seed : int
        Seed of the training run (a continued run offsets it by its epochs).
    n_importance_samples : int
        Number K of those draws.
    device : torch.device
        Where inference runs.
    frame : FrameSchema or None
        The DataFrame representation when fit received one.
    columns : ndarray of int or None
        Positions of the model's columns in the validated input (None: all).
    fit_dtype : numpy dtype
        Dtype of the fit input; array outputs come back in it.
    """

    schema: TabularSchema
    module: VAEModule
    score_seed: int
    train_seed: int = 0
    n_importance_samples: int = 32
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    frame: FrameSchema | None = None
    columns: np.ndarray | None = None
    fit_dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float64))

    @property
    def n_components(self) -> int:
        """Latent dimension."""
        return self.module.n_components

    @property
    def n_conditions(self) -> int:
        """Number of classes the decoder is conditioned on (0: none)."""
        return self.module.n_conditions

    # ------------------------------------------------------------------ policy
    @contextmanager
    def running(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
    ) -> Iterator[tuple]:
        """The module and inputs on the inference device, without gradients.

        The module runs as fitted, in its own dtype; no copy is made.
        """
        module = self.module
        on_device = x.device.type != "cpu"
        if on_device:
            module.to(x.device)
        try:
            with torch.inference_mode():
                yield module, x, mask, condition
        finally:
            if on_device:
                self.module.cpu()

    # ------------------------------------------------------------------ encode
    def encode(self, X: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoded model columns of validated ``X`` and their mask, on the device."""
        if self.columns is not None:
            X = X[:, self.columns]
        return self.schema.encode(X, self.device)

    def posterior_mean(self, x: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
        """E[z | x] per row, float64.

        Computed in fixed blocks of rows, as in :meth:`importance_map`.
        """
        with self.running(x, mask) as (module, x, mask, _):
            size = block_rows(module.row_width)
            parts = []
            for sl in chunks(x.shape[0], size):
                m = None if mask is None else pad_rows(mask[sl], size)
                mu = module.inference(pad_rows(x[sl], size), m)[0]
                parts.append(mu[: sl.stop - sl.start])
        return torch.cat(parts).double().cpu().numpy()

    def kl_per_component(
        self, x: torch.Tensor, mask: torch.Tensor | None
    ) -> np.ndarray:
        """Mean KL(q(z_k | x) || N(0, 1)) over the rows, per component."""
        total = torch.zeros(self.n_components, dtype=torch.float64, device=x.device)
        with self.running(x, mask) as (module, x, mask, _):
            # At the end of fit, beside the encoded training data.
            size = rows_per_chunk(module.row_width, live=2)
            for sl in chunks(x.shape[0], size):
                m = None if mask is None else mask[sl]
                total += module.kl_per_component(x[sl], m).double().sum(0)
        return (total / x.shape[0]).cpu().numpy()

    # ------------------------------------------------------------------ decode
    def decode(
        self,
        z: torch.Tensor,
        condition: torch.Tensor | None = None,
        *,
        return_mean: bool = True,
        generator: torch.Generator | None = None,
    ):
        """Decoder means (or draws, from ``generator`` on the CPU) of codes ``z``.

        Returned in the fit container: an array of the fit dtype, or a
        DataFrame with the fit columns and dtypes.
        """
        z = z.to(self.device if return_mean else torch.device("cpu"))
        if condition is not None:
            condition = condition.to(device=z.device, dtype=z.dtype)
        with self.running(z) as (module, z, _, _):
            params = module.generative(z, condition)
            if return_mean:
                values = module.mean(params)
            else:
                values = module.sample_x(params, generator)
        return self.to_output(self.schema.decode(values))

    def sample_prior(self, eps: torch.Tensor, condition=None) -> torch.Tensor:
        """Draws of p(z | y) from standard-normal ``eps``."""
        with torch.no_grad():
            return self.module.sample_prior(eps, condition)

    def to_output(self, values: np.ndarray):
        """Values in the original column order, in the container fit received."""
        if self.frame is None:
            return values.astype(self.fit_dtype, copy=False)
        return self.frame.to_frame(values)

    # ------------------------------------------------------------------ estimates
    def score_noise(self) -> torch.Tensor:
        """The K standard-normal draws shared by all rows (fixed at fit time)."""
        gen = torch.Generator().manual_seed(self.score_seed)
        return torch.randn(self.n_importance_samples, self.n_components, generator=gen)

    def importance_map(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        estimate: str,
        condition: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ):
        """Apply one of :data:`ESTIMATES` to the rows in bounded chunks.

        With no ``generator`` every row uses the fixed score draws, and the
        rows go through the module in blocks of one fixed number of rows
        (the last one padded): matrix products of one shape round the same
        way for every row, so a row's result does not depend on the other
        rows or on the call, bit for bit, at the module's own precision.
        With a ``generator``, each row gets fresh draws from it (posterior
        sampling). A ``condition`` of one row applies to every row. Returns
        the estimate's tensor.
        """
        fn = ESTIMATES[estimate]
        K = self.n_importance_samples
        fixed = generator is None
        with self.running(x, mask, condition) as (module, x, mask, condition):
            eps = self.score_noise().to(x)
            extra = {} if fixed else {"generator": generator}
            size = (block_rows if fixed else rows_per_chunk)(module.row_width, K)
            parts = []
            for sl in chunks(x.shape[0], size):
                n = sl.stop - sl.start
                if not fixed:
                    eps = torch.randn(
                        K, n, self.n_components, generator=generator, device=x.device
                    ).to(x)
                c = condition
                if c is not None and c.shape[0] > 1:
                    c = c[sl]
                m = None if mask is None else mask[sl]
                xb = x[sl]
                if fixed:
                    xb, m = pad_rows(xb, size), pad_rows(m, size)
                    c = c if c is None or c.shape[0] == 1 else pad_rows(c, size)
                parts.append(fn(module, xb, m, eps, c, **extra)[:n])
        return torch.cat(parts)

    def log_likelihood(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        estimate: str = "log_marginal",
        condition: torch.Tensor | None = None,
        class_prior: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per-row log-density estimate in the original units, float64.

        ``estimate`` is ``"log_marginal"`` (log p(x)) or
        ``"reconstruction_log_prob"``. With ``class_prior`` (a conditional
        model scored without classes) the estimate is
        ``log sum_c p(c) p(x | c)`` over the classes.
        """
        if class_prior is None:
            log_p = self.importance_map(x, mask, estimate, condition).double()
        else:
            eye = torch.eye(len(class_prior))
            per_class = torch.stack(
                [
                    self.importance_map(x, mask, estimate, eye[c : c + 1]).double()
                    for c in range(len(class_prior))
                ]
            )
            log_prior = torch.log(torch.as_tensor(class_prior, dtype=torch.float64))
            log_p = torch.logsumexp(per_class.cpu() + log_prior[:, None], dim=0)
        return log_p.cpu().numpy() - self.schema.log_det_jacobian(x, mask)

    def feature_log_likelihood(
        self, x: torch.Tensor, mask: torch.Tensor | None
    ) -> np.ndarray:
        """Per-column log p(x_j | z) in the original units and column order."""
        out = self.importance_map(x, mask, "feature_log_likelihood")
        out = out.double().cpu().numpy() - self.schema.log_det_jacobian_columns(x)
        return out[:, self.schema.inverse_order]

    def impute(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> np.ndarray:
        """Imputed values of every model column, in the original units.

        The importance-weighted conditional mean, or with a ``generator`` one
        draw from p(x_mis | x_obs) per row.
        """
        estimate = "impute" if generator is None else "sample_missing"
        values = self.importance_map(x, mask, estimate, generator=generator)
        return self.schema.decode(values)

    # ------------------------------------------------------------------ variances
    def pool_variances(self) -> None:
        """Give the Gaussian columns one pooled noise variance (PPCA's noise)."""
        self.module.likelihoods.pool_feature_variances()
