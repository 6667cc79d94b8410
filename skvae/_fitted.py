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
    "log_marginal_screen": _estimates.log_marginal_screen,
    "refined_log_marginal": _estimates.refined_log_marginal,
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


#: Rows of every block of :func:`~skvae._estimates.refined_log_marginal` (at
#: most; fewer when the chunk budget allows fewer).
REFINE_BLOCK_ROWS = 32
#: :attr:`FittedVAE.refine_below` lies below the training rows' ELBO per
#: observed variable's ``REFINE_QUANTILE`` quantile by ``REFINE_MARGIN``
#: times that quantile's distance to their median (below the training rows'
#: own spread); at most ``REFINE_THRESHOLD_ROWS`` rows set it.
REFINE_QUANTILE = 0.001
REFINE_MARGIN = 1.0
REFINE_THRESHOLD_ROWS = 2048


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
    refine_below : float or None
        Rows whose ELBO per observed variable is below this value get a
        refined proposal in :meth:`log_likelihood` (None: no row does); set
        at the end of fit by :meth:`set_refine_threshold`.
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
    refine_below: float | None = None

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
    def running(self, device: torch.device | None = None) -> Iterator[VAEModule]:
        """The module on ``device`` (default: the inference device), no gradients.

        The module runs as fitted, in its own dtype; no copy is made. It is
        moved once per call, never per chunk, and back to the CPU afterwards.
        """
        device = self.device if device is None else torch.device(device)
        on_device = device.type != "cpu"
        if on_device:
            self.module.to(device)
        try:
            with torch.inference_mode():
                yield self.module
        finally:
            if on_device:
                self.module.cpu()

    # ------------------------------------------------------------------ encode
    def encode(self, X: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoded model columns of validated ``X`` and their mask, on the device."""
        if self.columns is not None:
            X = X[:, self.columns]
        return self.schema.encode(X, self.device)

    def encoded_chunks(
        self, X: np.ndarray, step: int, rows: np.ndarray | None = None
    ) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor | None]]:
        """Consecutive row chunks of validated ``X``, each encoded on the device.

        Every chunk but the last holds a multiple of ``step`` rows, as many
        as keep its encoded tensor and mask within the chunk budget
        (:mod:`skvae._chunks`): an inference call holds one chunk of encoded
        rows at a time, whatever the number of rows. With ``rows`` (indices
        into ``X``) only those rows are encoded, in that order, and the
        slices index ``rows``.
        """
        width = self.schema.n_encoded + self.schema.n_features
        size = rows_per_chunk(width, live=2)
        size = max(step, size - size % step)
        n = X.shape[0] if rows is None else len(rows)
        for sl in chunks(n, size):
            yield (sl, *self.encode(X[sl] if rows is None else X[rows[sl]]))

    def posterior_mean(self, X: np.ndarray, dtype=np.float64) -> np.ndarray:
        """E[z | x] per row of validated ``X``, as an array of ``dtype``.

        Computed in fixed blocks of rows, as in :meth:`importance_map`.
        """
        out = np.empty((X.shape[0], self.n_components), dtype=dtype)
        with self.running() as module:
            size = block_rows(module.row_width)
            for rows, x, mask in self.encoded_chunks(X, size):
                parts = []
                for sl in chunks(x.shape[0], size):
                    m = None if mask is None else pad_rows(mask[sl], size)
                    mu = module.inference(pad_rows(x[sl], size), m)[0]
                    parts.append(mu[: sl.stop - sl.start])
                out[rows] = torch.cat(parts).cpu().numpy()
        return out

    def kl_per_component(
        self, x: torch.Tensor, mask: torch.Tensor | None
    ) -> np.ndarray:
        """Mean KL(q(z_k | x) || N(0, 1)) over the encoded rows, per component."""
        total = torch.zeros(self.n_components, dtype=torch.float64, device=x.device)
        with self.running(x.device) as module:
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
        with self.running(z.device) as module:
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
        X: np.ndarray,
        estimate: str,
        condition: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        finish: Callable | None = None,
        rows: np.ndarray | None = None,
        block: int | None = None,
    ) -> np.ndarray:
        """Apply one of :data:`ESTIMATES` to the rows of validated ``X``.

        The rows are encoded a chunk at a time (:meth:`encoded_chunks`). With
        no ``generator`` every row uses the fixed score draws, and the rows go
        through the module in blocks of one fixed number of rows (the last
        one padded): matrix products of one shape round the same way for
        every row, so a row's result does not depend on the other rows or on
        the call, bit for bit, at the module's own precision. With a
        ``generator``, each row gets fresh draws from it (posterior
        sampling), drawn in sub-chunks of one size whatever the chunking of
        the encoding. A ``condition`` of one row applies to every row;
        otherwise it has a row per row of ``X``.

        ``finish(values, x, mask)`` turns a chunk's estimate (a tensor) into
        the returned values (an array), with that chunk's encoded rows at
        hand; by default they are the estimate in float64. With ``rows``
        (indices into ``X``) only those rows are estimated; a ``condition``
        with a row per row then has a row per index of ``rows``. ``block``
        caps the rows of a fixed block. Returns the values of every row
        estimated.
        """
        fn = ESTIMATES[estimate]
        K = self.n_importance_samples
        fixed = generator is None
        out = None
        with self.running() as module:
            eps = self.score_noise().to(self.device)
            extra = {} if fixed else {"generator": generator}
            size = (block_rows if fixed else rows_per_chunk)(module.row_width, K)
            if block is not None:
                size = min(size, block)
            for part, x, mask in self.encoded_chunks(X, size, rows):
                eps = eps.to(x)
                cond = condition
                if cond is not None:
                    cond = cond.to(device=x.device, dtype=x.dtype)
                    cond = cond if cond.shape[0] == 1 else cond[part]
                parts = []
                for sl in chunks(x.shape[0], size):
                    n = sl.stop - sl.start
                    if not fixed:
                        eps = torch.randn(
                            K,
                            n,
                            self.n_components,
                            generator=generator,
                            device=x.device,
                        ).to(x)
                    c = cond
                    if c is not None and c.shape[0] > 1:
                        c = c[sl]
                    m = None if mask is None else mask[sl]
                    xb = x[sl]
                    if fixed:
                        xb, m = pad_rows(xb, size), pad_rows(m, size)
                        c = c if c is None or c.shape[0] == 1 else pad_rows(c, size)
                    parts.append(fn(module, xb, m, eps, c, **extra)[:n])
                values = torch.cat(parts)
                if finish is None:
                    values = values.double().cpu().numpy()
                else:
                    values = finish(values, x, mask)
                if out is None:
                    n = X.shape[0] if rows is None else len(rows)
                    out = np.empty((n, *values.shape[1:]), values.dtype)
                out[part] = values
        if out is None:  # no rows
            out = np.empty((0, *self._estimate_shape(estimate)))
        return out

    def _estimate_shape(self, estimate: str) -> tuple[int, ...]:
        """Trailing shape of one row's estimate."""
        if estimate in ("log_marginal", "reconstruction_log_prob"):
            return ()
        if estimate == "log_marginal_screen":
            return (2,)
        return (self.schema.n_features,)

    def log_likelihood(
        self,
        X: np.ndarray,
        estimate: str = "log_marginal",
        condition: torch.Tensor | None = None,
        class_prior: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per-row log-density estimate of validated ``X`` in its units, float64.

        ``estimate`` is ``"log_marginal"`` (log p(x)) or
        ``"reconstruction_log_prob"``. With ``class_prior`` (a conditional
        model scored without classes) the estimate is
        ``log sum_c p(c) p(x | c)`` over the classes.

        With :attr:`refine_below` set, ``"log_marginal"`` is screened: rows
        whose K-draw ELBO per observed variable falls below it (rows unlike
        the training rows, on which the encoder's proposal can be far from
        the posterior) are estimated again with a proposal refined for the
        row (:func:`~skvae._estimates.refined_log_marginal`), in blocks of
        :data:`REFINE_BLOCK_ROWS`. The screen and the refinement are per
        row, so a row's value still does not depend on the other rows.
        """

        def estimate_rows(condition):
            if estimate == "log_marginal" and self.refine_below is not None:
                return self._refined_log_marginal(X, condition)
            return self.importance_map(X, estimate, condition, finish=self._jacobian)

        if class_prior is None:
            return estimate_rows(condition)
        eye = torch.eye(len(class_prior))
        per_class = np.stack(
            [estimate_rows(eye[c : c + 1]) for c in range(len(class_prior))]
        )
        log_prior = np.log(np.asarray(class_prior, dtype=np.float64))
        joint = torch.from_numpy(per_class + log_prior[:, None])
        return torch.logsumexp(joint, dim=0).numpy()

    def _jacobian(self, values: torch.Tensor, x, mask) -> np.ndarray:
        """A chunk's log-densities in the data's units (float64 array)."""
        return values.double().cpu().numpy() - self.schema.log_det_jacobian(x, mask)

    def _refined_log_marginal(self, X: np.ndarray, condition) -> np.ndarray:
        """Screened log p(x) of validated ``X``; low rows get a refined proposal."""

        def screen(values, x, mask):
            out = values.double().cpu().numpy()
            out[:, 0] -= self.schema.log_det_jacobian(x, mask)
            return out

        screened = self.importance_map(
            X, "log_marginal_screen", condition, finish=screen
        )
        values = np.ascontiguousarray(screened[:, 0])
        rows = np.flatnonzero(screened[:, 1] < self.refine_below)
        if rows.size:
            if condition is not None and condition.shape[0] > 1:
                condition = condition[torch.from_numpy(rows)]
            values[rows] = self.importance_map(
                X,
                "refined_log_marginal",
                condition,
                finish=self._jacobian,
                rows=rows,
                block=REFINE_BLOCK_ROWS,
            )
        return values

    def set_refine_threshold(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        condition: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        """Set :attr:`refine_below` from encoded training rows.

        From the rows' ELBO per observed variable, each from one draw (the
        first score draw), over at most :data:`REFINE_THRESHOLD_ROWS` rows
        drawn with ``generator``: their :data:`REFINE_QUANTILE` quantile less
        :data:`REFINE_MARGIN` times its distance to their median.
        """
        n = x.shape[0]
        if n > REFINE_THRESHOLD_ROWS:
            pick = torch.randperm(n, generator=generator, device="cpu")
            pick = pick[:REFINE_THRESHOLD_ROWS].to(x.device)
            x = x[pick]
            mask = None if mask is None else mask[pick]
            if condition is not None and condition.shape[0] > 1:
                condition = condition[pick]
        eps = self.score_noise()[:1].to(x)
        values = []
        with self.running(x.device) as module:
            size = rows_per_chunk(module.row_width, live=2)
            for sl in chunks(x.shape[0], size):
                m = None if mask is None else mask[sl]
                c = condition
                if c is not None and c.shape[0] > 1:
                    c = c[sl]
                log_w, _ = module.log_weights(x[sl], m, eps, c)
                per_var = _estimates.per_variable(log_w[0], m, module)
                values.append(per_var.double().cpu())
        values = torch.cat(values).numpy()
        values = values[np.isfinite(values)]
        if not values.size:
            self.refine_below = None
            return
        low, median = np.quantile(values, [REFINE_QUANTILE, 0.5])
        self.refine_below = float(low - REFINE_MARGIN * (median - low))

    def feature_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        """Per-column log p(x_j | z) of validated ``X``, original units and order."""

        def jacobian(values, x, mask):
            out = values.double().cpu().numpy()
            out = out - self.schema.log_det_jacobian_columns(x)
            return out[:, self.schema.inverse_order]

        return self.importance_map(X, "feature_log_likelihood", finish=jacobian)

    def impute(
        self,
        X: np.ndarray,
        generator: torch.Generator | None = None,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Imputed values of every model column of validated ``X``, original units.

        The importance-weighted conditional mean, or with a ``generator`` one
        draw from p(x_mis | x_obs) per row; with ``rows``, of those rows only.
        """
        estimate = "impute" if generator is None else "sample_missing"

        def decoded(values, x, mask):
            return self.schema.decode(values)

        return self.importance_map(
            X, estimate, generator=generator, finish=decoded, rows=rows
        )

    # ------------------------------------------------------------------ variances
    def pool_variances(self) -> None:
        """Give the Gaussian columns one pooled noise variance (PPCA's noise)."""
        self.module.likelihoods.pool_feature_variances()
