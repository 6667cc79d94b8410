"""VQVAETransformer: discrete codes with a learned autoregressive prior."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from . import _params
from ._base import _BaseVAE, store_params
from ._chunks import block_rows, chunks
from ._conditions import ClassConditioned, int_in_range, one_row
from ._dask import dask_inference
from ._fitted import pad_rows
from ._likelihoods import make_likelihoods
from ._params import document
from ._prior import fit_prior, log_prob_chunks
from ._training import summary_rows
from ._utils import Interval, StrOptions, _fit_context
from ._vqmodule import build_vq_module, grid_size

#: ``n_latents="auto"`` of the fully connected architecture.
AUTO_LATENTS = 8
#: The prior trains on the codes of at most this many training rows.
PRIOR_ROWS = 50_000
#: Shared parameters a vector-quantized model does not take: the values its
#: training plan uses in their place (one deterministic code per row, no KL
#: weight to warm up, no importance sampling).
FIXED_PLAN = {
    "beta": 1.0,
    "kl_warmup": 0,
    "n_train_samples": 1,
    "trim_fraction": 0.0,
    "refit": False,
    "n_importance_samples": 1,
}


@dask_inference(transform="codes", score_samples="scores", score="mean")
@document
class VQVAETransformer(
    ClassConditioned, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _BaseVAE
):
    """Vector-quantized autoencoder (VQ-VAE) as a scikit-learn transformer.

    The encoder maps each row to ``n_latents`` vectors of size
    ``embedding_dim``; each is replaced by its nearest entry of a codebook of
    ``n_embeddings`` vectors, and the decoder maps the quantized vectors to
    the parameters of p(x | z), one likelihood per column, as in
    :class:`VAETransformer`. The codebook follows the encoder's vectors by
    moving averages, and entries that fall out of use are re-seeded from
    encoder vectors, so the codebook stays in use. After the autoencoder, an
    autoregressive prior over the code sequence (an LSTM; in raster order for
    a grid of codes) is fitted, with early stopping of its own, for
    :meth:`sample` and :meth:`score_samples`.

    ``transform`` returns the quantized code vectors, ``predict_codes`` the
    integer codes (a tokenizer: one-hot encode them for a classifier),
    ``inverse_transform`` decodes either. Columns are scaled inside the
    estimator and every output is in the original units; NaN marks a missing
    entry; a pandas DataFrame may mix numeric, categorical, string and bool
    columns. ``fit`` streams a Dask collection; ``transform``,
    ``score_samples`` and ``score`` map one lazily, as
    :class:`VAETransformer` does (``encode="ordinal"`` gives the codes).

    Parameters
    ----------
    n_embeddings : int, default=64
        Codebook entries: the number of distinct codes at each position.
    embedding_dim : int, default=8
        Size of each code vector.
    n_latents : int or "auto", default="auto"
        Codes per row. ``"auto"``: 8 for the fully connected architecture;
        for ``architecture="conv"``, one code per position of the innermost
        feature map (a grid: 7 x 7 for 28 x 28 images), joined to it by 1x1
        convolutions. An int with ``architecture="conv"`` joins the feature
        map to that many codes by dense layers.
    commitment_cost : float, default=0.25
        Weight of the commitment term, the squared distance from the
        encoder's vectors to their codes, which keeps the encoder close to
        the codebook.
    encode : {"vectors", "onehot", "ordinal"}, default="vectors"
        What :meth:`transform` returns: the quantized code vectors
        (``n_latents_ * embedding_dim`` columns); the codes one-hot encoded
        (``n_latents_ * n_embeddings`` columns of 0 and 1, position after
        position: a tokenizer for a linear model); or the codes themselves as
        floats (``n_latents_`` columns), as ``encode`` of
        :class:`~sklearn.preprocessing.KBinsDiscretizer`.
    conditional : bool, default=False
        Fit a class-conditional prior p(codes | y): ``fit(X, y)`` learns the
        classes of ``y`` and ``sample(n, y=...)`` generates rows of the
        requested classes. The encoder and decoder do not see ``y``.
    {shared_parameters}

    Attributes
    ----------
    module_ : VQModule
        The fitted torch module (on the CPU, in eval mode), code prior
        included.
    schema_ : TabularSchema
        Column kinds and scaling learned from the training data.
    column_likelihoods_ : ndarray of object, shape (`n_features_in_`,)
        The likelihood kind of each input column.
    n_latents_ : int
        Codes per row.
    codebook_ : ndarray of shape (n_embeddings, embedding_dim)
        The code vectors, in the model's units.
    code_counts_ : ndarray of shape (n_embeddings,)
        How often each code is used over the training rows (every position
        of every row; over 50,000 rows drawn at random when there are more).
    codebook_usage_ : float
        Share of the codebook entries used at least once in
        ``code_counts_``; an entry used a handful of times counts, so
        ``perplexity_`` is the measure of how evenly they are used.
    perplexity_ : float
        exp of the entropy of the code frequencies in ``code_counts_``: the
        number of equally used codes that would give the same entropy
        (``n_embeddings`` at most).
    n_iter_ : int
        Number of autoencoder epochs run.
    training_plan_ : dict
        The autoencoder's training settings, as in
        :class:`~skvae.VAETransformer` (those this estimator has a parameter
        for).
    loss_curve_ : list of float
        Training loss per epoch: negative reconstruction log-likelihood per
        row plus the commitment term, plus ``n_latents * log(n_embeddings)``
        (the KL to a uniform code prior).
    best_loss_ : float
        Lowest value of ``loss_curve_``.
    validation_scores_ : list of float or None
        Held-out rows' ELBO under a uniform code prior, per epoch, when rows
        were held out (``early_stopping``); None otherwise.
    best_validation_score_ : float or None
        Best validation score; its weights are the fitted ones.
    prior_loss_curve_ : list of float
        Training negative log-likelihood of the code prior per epoch, in nats
        per row.
    prior_validation_scores_ : list of float or None
        Held-out rows' mean log-likelihood of their codes under the prior,
        per epoch, when rows were held out for it (at least 100 rows).
    prior_n_iter_ : int
        Epochs of the prior's training.
    classes_, class_count_, class_prior_ : ndarray
        Class labels, training rows per class and their shares, when
        ``conditional=True``.
    image_shape_ : tuple of int
        ``(channels, height, width)`` of the images, when
        ``architecture="conv"``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    VAETransformer : The same model with a continuous Gaussian latent.

    Notes
    -----
    The model is that of van den Oord et al. (2017), "Neural Discrete
    Representation Learning", with the codebook learned by exponential
    moving averages. Training maximizes the reconstruction log-likelihood
    minus ``commitment_cost`` times the commitment term, with gradients
    passed straight through the quantization; early stopping and the
    training plan follow :class:`VAETransformer`. The prior is trained
    afterwards, on the codes of the training rows, by maximum likelihood.

    ``score_samples`` is log p(codes(x)) + log p(x | codes(x)): the joint
    probability of the row and its single most likely code sequence under
    the encoder, a lower bound on log p(x) = log sum_c p(c) p(x | c).

    The prior has its own budget and early stopping (on 10% of the rows'
    codes, when that is at least 10 rows); an explicit ``max_iter`` also
    caps its epochs. ``partial_fit`` runs one epoch of the autoencoder and
    then one epoch of the prior over the batch's codes, with a fresh
    optimizer for the prior.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VQVAETransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> vq = VQVAETransformer(max_iter=3, random_state=0).fit(X)
    >>> vq.predict_codes(X[:2]).shape
    (2, 8)
    >>> vq.transform(X[:2]).shape  # 8 codes of 8 values each
    (2, 64)
    """

    _parameter_constraints: dict = {
        **{
            k: v
            for k, v in _params.SHARED_CONSTRAINTS.items()
            if k not in FIXED_PLAN and k != "n_components"
        },
        # No staged variances: the VQ decoder's variances train with it.
        "gaussian_variance": [StrOptions({"feature", "decoder"})],
        "n_embeddings": [Interval(Integral, 2, None, closed="left")],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "n_latents": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "commitment_cost": [Interval(Real, 0, None, closed="left")],
        "conditional": ["boolean"],
        "encode": [StrOptions({"vectors", "onehot", "ordinal"})],
    }
    _frame_numeric_kind = "quantile"
    _curve_labels = {
        "objective": "reconstruction + commitment + L log K",
        "validation": "negative ELBO (uniform prior)",
        "validation_sign": -1.0,
        "validation_axis": None,
    }
    # The FIXED_PLAN values, read by the shared training plan.
    beta = 1.0
    kl_warmup = 0
    n_train_samples = 1
    trim_fraction = 0.0
    refit = False
    n_importance_samples = 1

    def __init__(
        self,
        n_embeddings=64,
        embedding_dim=8,
        n_latents="auto",
        *,
        commitment_cost=0.25,
        encode="vectors",
        conditional=False,
        architecture="mlp",
        image_shape=None,
        hidden_layer_sizes=(256, 128),
        activation="relu",
        likelihood="auto",
        handle_unknown="error",
        standardize=True,
        max_iter="auto",
        batch_size="auto",
        learning_rate="auto",
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change="auto",
        tol=1e-4,
        min_variance=1e-3,
        gaussian_variance="feature",
        variance_update="auto",
        device="auto",
        random_state=None,
        verbose=0,
    ):
        store_params(self, locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self._width(self.encode)

    def _width(self, encode: str) -> int:
        """Columns of ``transform``'s output with ``encode``."""
        per_code = {"vectors": self.embedding_dim, "onehot": self.n_embeddings}
        return self.n_latents_ * per_code.get(encode, 1)

    @property
    def codebook_(self) -> np.ndarray:
        check_is_fitted(self)
        return self.module_.quantizer.codebook.double().numpy().copy()

    # ------------------------------------------------------------------ build
    def _build_module(self, schema, has_missing: bool, n_conditions: int, seed: int):
        """The initialised VQ module for ``schema`` (on the CPU)."""
        image_shape, grid = None, False
        if self.architecture == "conv":
            image_shape = self._image_shape(schema)
            grid = self.n_latents == "auto"
        else:
            self.__dict__.pop("image_shape_", None)
        if grid:
            n_latents = grid_size(image_shape)
        elif self.n_latents == "auto":
            n_latents = AUTO_LATENTS
        else:
            n_latents = int(self.n_latents)
        self.n_latents_ = n_latents
        return build_vq_module(
            make_likelihoods(
                schema.block_sizes,
                schema.n_categories,
                min_variance=self.min_variance,
                gaussian_variance=self.gaussian_variance,
            ),
            n_latents,
            self.n_embeddings,
            self.embedding_dim,
            _params.hidden_sizes(self.hidden_layer_sizes),
            self.activation,
            commitment_cost=self.commitment_cost,
            mask_channel=self._always_mask_channel or has_missing,
            n_classes=n_conditions,
            image_shape=image_shape,
            grid=grid,
            generator=torch.Generator().manual_seed(seed),
        )

    def _check_continuation(self) -> None:
        super()._check_continuation()
        for name in ("n_embeddings", "embedding_dim", "commitment_cost"):
            fitted = getattr(self.module_, name)
            if getattr(self, name) != fitted:
                raise ValueError(
                    f"This VQVAETransformer was first fitted with {name}={fitted}; "
                    f"partial_fit cannot continue with {name}="
                    f"{getattr(self, name)}. Call fit to start over."
                )

    def _summarize_latent(self, x, mask, condition, *, incremental: bool, plan):
        """Code statistics of the training rows; fit the code prior on them."""
        generator = torch.Generator(x.device).manual_seed(plan.seed)
        rows = summary_rows(x.shape[0], generator, PRIOR_ROWS)
        if condition is not None:
            condition = torch.as_tensor(condition, device=x.device).argmax(-1)
        if rows is not None:
            x, mask = x[rows], None if mask is None else mask[rows]
            condition = None if condition is None else condition[rows]
        module = self.module_
        module.eval()
        with torch.no_grad():
            codes = torch.cat(
                [
                    module.codes(x[sl], None if mask is None else mask[sl])
                    for sl in chunks(x.shape[0], block_rows(module.row_width))
                ]
            )
        counts = torch.bincount(codes.reshape(-1), minlength=module.n_embeddings)
        counts = counts.cpu().numpy()
        self.code_counts_ = counts
        self.codebook_usage_ = float(np.mean(counts > 0))
        share = counts[counts > 0] / counts.sum()
        self.perplexity_ = float(np.exp(-np.sum(share * np.log(share))))
        max_iter = None if self.max_iter == "auto" else int(self.max_iter)
        result = fit_prior(
            module.prior,
            codes,
            condition,
            seed=plan.seed + 1,
            max_iter=1 if incremental else max_iter,
            early_stopping=not incremental,
        )
        previous = getattr(self, "prior_loss_curve_", []) if incremental else []
        self.prior_loss_curve_ = list(previous) + result.loss_curve
        self.prior_validation_scores_ = result.validation_scores
        self.prior_n_iter_ = len(self.prior_loss_curve_)

    def _latent_warnings(self):
        return ()

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoder on X, then the code prior.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Training data; NaN marks a missing entry. A Dask collection is
            streamed (the prior is then fitted on a sample of the rows).
        y : array-like of shape (n_samples,) or None, default=None
            Class labels when ``conditional=True``, where they are required;
            ignored otherwise.

        Returns
        -------
        self : VQVAETransformer
            The fitted estimator.
        """
        self._fit(X, y)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, classes=None):
        """Run one epoch of the autoencoder, then of the prior, over X.

        The first call sets the column kinds and scaling from its X; later
        calls keep them and the autoencoder's Adam state. Early stopping does
        not apply.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            A batch of training data; NaN marks a missing entry.
        y : array-like of shape (n_samples,) or None, default=None
            Class labels, required when ``conditional=True``.
        classes : array-like of shape (n_classes,) or None, default=None
            Every class of the conditional model, read on the first call.

        Returns
        -------
        self : VQVAETransformer
            The updated estimator.
        """
        self._fit(X, y, incremental=True, classes=classes)
        return self

    # ------------------------------------------------------------------ rows
    def _map_rows(self, model, X, fn, dtype, classes=None) -> np.ndarray:
        """``fn(module, x, mask, classes)`` over validated X in fixed blocks.

        Every block has the same number of rows (the last one padded), so a
        row's result does not depend on the other rows or on the call.
        ``classes`` (a tensor of class indices per row, or None) is sliced
        with the rows. Returns the rows' results as an array of ``dtype``.
        """
        out = None
        with model.running() as module:
            size = block_rows(module.row_width)
            for rows, x, mask in model.encoded_chunks(X, size):
                parts = []
                for sl in chunks(x.shape[0], size):
                    n = sl.stop - sl.start
                    m = None if mask is None else pad_rows(mask[sl], size)
                    c = None
                    if classes is not None:
                        c = pad_rows(classes[rows][sl].to(x.device), size)
                    parts.append(fn(module, pad_rows(x[sl], size), m, c)[:n])
                values = torch.cat(parts)
                values = values.cpu().numpy().astype(dtype, copy=False)
                if out is None:
                    out = np.empty((X.shape[0], *values.shape[1:]), dtype)
                out[rows] = values
        if out is None:
            out = np.empty((0,), dtype)
        return out

    def transform(self, X):
        """Encode each row by its codes, as ``encode`` says.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows to encode; NaN marks a missing entry.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features_out)
            In the dtype of X (float32 or float64). ``encode="vectors"``: the
            codebook vectors of each row's codes, position after position
            (``n_latents_ * embedding_dim`` columns); ``"onehot"``: each
            position's code one-hot encoded (``n_latents_ * n_embeddings``
            columns); ``"ordinal"``: the codes (``n_latents_`` columns).
        """
        model, X = self._validated(X)
        encode = self.encode

        def encoded(module, x, mask, classes):
            codes = module.codes(x, mask)
            if encode == "vectors":
                return module.lookup(codes)
            if encode == "ordinal":
                return codes
            one_hot = torch.nn.functional.one_hot(codes, module.n_embeddings)
            return one_hot.reshape(codes.shape[0], -1)

        out = self._map_rows(model, X, encoded, X.dtype)
        return out.reshape(X.shape[0], self._n_features_out)

    def predict_codes(self, X):
        """The integer code of each position of each row.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows to encode; NaN marks a missing entry.

        Returns
        -------
        codes : ndarray of int64, shape (n_samples, n_latents_)
            Codebook indices in ``[0, n_embeddings)``.
        """
        model, X = self._validated(X)

        def codes(module, x, mask, classes):
            return module.codes(x, mask)

        out = self._map_rows(model, X, codes, np.int64)
        return out.reshape(X.shape[0], self.n_latents_)

    # ------------------------------------------------------------------ decode
    def _vectors_of(self, Z) -> torch.Tensor:
        """Code vectors of ``Z``: codes, code vectors or one-hot codes.

        The format of ``transform``'s output comes first where widths
        coincide; then an integer dtype means codes.
        """
        Z = check_array(Z, dtype=None)
        formats = {"ordinal": self._width("ordinal")}
        formats["vectors"] = self._width("vectors")
        formats["onehot"] = self._width("onehot")
        matching = [k for k, w in formats.items() if w == Z.shape[1]]
        if not matching:
            raise ValueError(
                f"Z has {Z.shape[1]} columns; pass codes of shape (n_samples, "
                f"{formats['ordinal']}) from predict_codes, code vectors of shape "
                f"(n_samples, {formats['vectors']}) or one-hot codes of shape "
                f"(n_samples, {formats['onehot']}) from transform."
            )
        kind = matching[0]
        if self.encode in matching:
            kind = self.encode
        if np.issubdtype(Z.dtype, np.integer) and "ordinal" in matching:
            kind = "ordinal"
        if kind == "vectors":
            Z = check_array(Z, dtype=[np.float64, np.float32])
            return torch.as_tensor(Z, dtype=torch.float32)
        values = np.asarray(Z, dtype=np.float64)
        if kind == "onehot":
            blocks = values.reshape(values.shape[0], self.n_latents_, -1)
            if not (np.isin(blocks, (0.0, 1.0)).all() and (blocks.sum(-1) == 1).all()):
                raise ValueError(
                    "One-hot codes must hold a single 1 in each block of "
                    f"{self.n_embeddings} columns and 0 elsewhere."
                )
            values = blocks.argmax(-1).astype(np.float64)
        bad = (values != np.round(values)) | (values < 0)
        bad |= values >= self.n_embeddings
        if bad.any():
            raise ValueError(
                f"Codes must be integers in [0, {self.n_embeddings}) (from "
                "predict_codes or sample); got other values."
            )
        codes = torch.as_tensor(values.astype(np.int64))
        return self.module_.lookup(codes).detach().float()

    def inverse_transform(self, Z):
        """Decode codes or code vectors to the decoder's mean E[x | z].

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_columns)
            Codes (from :meth:`predict_codes`, ``n_latents_`` columns), code
            vectors (``n_latents_ * embedding_dim`` columns; any finite
            vectors are decoded as they are) or one-hot codes
            (``n_latents_ * n_embeddings`` columns), from :meth:`transform`
            with any ``encode``. Where two formats have the same width, the
            current ``encode``'s format is read, and an integer dtype means
            codes.

        Returns
        -------
        X_rec : ndarray or DataFrame of shape (n_samples, n_features)
            Means in the original units, in the container of the fit input.
        """
        check_is_fitted(self)
        z = self._vectors_of(Z)
        return self._model().decode(z, None, return_mean=True)

    def sample(
        self,
        n_samples=1,
        *,
        y=None,
        random_state=None,
        temperature=1.0,
        return_mean=False,
    ):
        """Generate rows: codes from the learned prior, then x ~ p(x | codes).

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows.
        y : array-like of shape (n_samples,), label or None, default=None
            Class of each generated row, for a conditional model: labels of
            ``classes_``, or one label for every row. When None, a conditional
            model draws the classes from ``class_prior_``. Must be None for an
            unconditional model.
        random_state : int, RandomState instance or None, default=None
            Seed for the draws; None uses the estimator's ``random_state``.
        temperature : float, default=1.0
            Divides the prior's logits: below 1 gives more typical code
            sequences, above 1 more varied ones.
        return_mean : bool, default=False
            Return the decoder means E[x | codes] instead of draws from
            p(x | codes).

        Returns
        -------
        X_new : ndarray or DataFrame of shape (n_samples, n_features)
            Generated rows, in the container of the fit input.
        """
        check_is_fitted(self)
        n_samples = int_in_range(n_samples, "n_samples", 1)
        if not isinstance(temperature, Real) or not temperature > 0:
            raise ValueError(
                f"temperature must be a positive float; got {temperature!r}."
            )
        model = self._model()
        gen = self._draw_generator(random_state)
        classes = None
        if self._is_conditional_fit():
            if y is None:
                prior = torch.as_tensor(self.class_prior_, dtype=torch.float64)
                classes = torch.multinomial(prior, n_samples, True, generator=gen)
            else:
                classes = torch.as_tensor(
                    self._class_index(y, n_samples, method="sample")
                )
        elif y is not None:
            raise ValueError("y is only accepted by a conditional model.")
        with model.running(torch.device("cpu")) as module:
            codes = module.prior.sample(
                n_samples, classes, generator=gen, temperature=float(temperature)
            )
            z = module.lookup(codes).float()
        return model.decode(z, None, return_mean=return_mean, generator=gen)

    def interpolate(
        self, x_start, x_end, n_steps: int = 10, *, return_mean=True, random_state=None
    ):
        """Decode a straight line between two rows' encoder outputs.

        The line joins the encoder outputs (before quantization) of
        ``x_start`` and ``x_end`` in ``n_steps`` evenly spaced points,
        endpoints included; each point is quantized and decoded, so every
        row is decoded from a code sequence, and the first and last rows are
        ``inverse_transform(predict_codes(x))`` of the endpoints.

        Parameters
        ----------
        x_start, x_end : array-like of shape (n_features,) or (1, n_features)
            The two rows (a one-row DataFrame or a Series also works).
        n_steps : int, default=10
            Number of decoded rows, at least 2.
        return_mean : bool, default=True
            Decoder means E[x | codes]; False gives draws from p(x | codes).
        random_state : int, RandomState instance or None, default=None
            Seed of the draws when ``return_mean=False``; None uses the
            estimator's ``random_state``.

        Returns
        -------
        X_path : ndarray or DataFrame of shape (n_steps, n_features)
            Decoded rows along the path, in the container of the fit input.
        """
        check_is_fitted(self)
        n_steps = int_in_range(
            n_steps, "n_steps", 2, why=" (the path includes both endpoints)"
        )
        ends = []
        for x, name in ((x_start, "x_start"), (x_end, "x_end")):
            model, x = self._validated(one_row(x, name))

            def encoded(module, x, mask, classes):
                return module.encode(x, mask)

            ends.append(self._map_rows(model, x, encoded, np.float64)[0])
        path = torch.as_tensor(np.linspace(ends[0], ends[1], n_steps))
        module = self.module_
        with torch.no_grad():
            z = module.lookup(module.quantizer.codes(path.float())).float()
        generator = None if return_mean else self._draw_generator(random_state)
        return model.decode(z, None, return_mean=return_mean, generator=generator)

    # ------------------------------------------------------------------ scoring
    def score_samples(self, X, y=None):
        """Lower bound on log p(x) of each row: log p(codes) + log p(x | codes).

        The codes are the row's (:meth:`predict_codes`); log p(codes) is the
        prior's, log p(x | codes) the decoder's, in nats, for the data in
        their original units (every transformation's Jacobian is included).
        Missing entries are marginalized out. A row's score does not depend
        on the other rows, and repeated calls give identical values.

        For a conditional model, ``y=None`` gives the prior's marginal
        log sum_c p(c) p(codes | c), with p(c) = ``class_prior_``; with
        ``y``, log p(codes | y).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows to score; NaN marks a missing entry.
        y : array-like of shape (n_samples,), label or None, default=None
            Classes of the rows, for a conditional model only.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Higher means more typical under the model.
        """
        check_is_fitted(self)
        model, X = self._validated(X)
        classes, class_prior = None, None
        if self._is_conditional_fit():
            if y is None:
                class_prior = torch.log(torch.as_tensor(self.class_prior_))
            else:
                classes = torch.as_tensor(
                    self._class_index(y, X.shape[0], method="score_samples")
                )
        elif y is not None:
            raise ValueError("y is only accepted by a conditional model.")
        schema = model.schema

        def joint(module, x, mask, c):
            log_px, codes = module.reconstruction(x, mask)
            if class_prior is None:
                log_pc = log_prob_chunks(module.prior, codes, c).double()
            else:
                per_class = [
                    log_prob_chunks(
                        module.prior, codes, codes.new_full((x.shape[0],), k)
                    ).double()
                    + class_prior[k]
                    for k in range(class_prior.shape[0])
                ]
                log_pc = torch.logsumexp(torch.stack(per_class), dim=0)
            jacobian = torch.as_tensor(
                schema.log_det_jacobian(x, mask), device=x.device
            )
            return log_px.double() + log_pc - jacobian

        return self._map_rows(model, X, joint, np.float64, classes)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over the rows of X.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows to score; NaN marks a missing entry.
        y : array-like of shape (n_samples,) or None, default=None
            Classes of the rows, for a conditional model.

        Returns
        -------
        score : float
            Mean log-likelihood bound, in nats per row.
        """
        check_is_fitted(self)
        if not self._is_conditional_fit():
            y = None
        return float(np.mean(self.score_samples(X, y=y)))
