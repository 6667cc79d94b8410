"""VAETransformer: dimensionality reduction, generation and density."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from . import _params
from ._base import _BaseVAE, store_params
from ._conditions import ClassConditioned, int_in_range, one_row
from ._dask import dask_inference
from ._params import document
from ._utils import _fit_context

#: Default latent values of :meth:`VAETransformer.traverse` (the prior's
#: central +-3 standard deviations).
TRAVERSE_VALUES = np.linspace(-3.0, 3.0, 7)
#: ``inverse_transform`` refuses codes beyond +-this (the prior is N(0, I)).
MAX_CODE = 1e4


@dask_inference(
    transform="codes", inverse_transform="decode", score_samples="scores", score="mean"
)
@document
class VAETransformer(
    ClassConditioned, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _BaseVAE
):
    """Variational autoencoder as a scikit-learn transformer.

    An encoder maps each row to a Gaussian posterior q(z | x) over
    ``n_components_`` latent variables; a decoder maps z to the parameters of
    p(x | z), one likelihood per column. ``transform`` returns posterior
    means, ``inverse_transform`` decodes codes, ``sample`` generates rows,
    ``score_samples`` estimates log p(x), and ``interpolate`` and
    ``traverse`` decode paths through the latent space. Columns are scaled
    inside the estimator and every output is in the original units; NaN
    marks a missing entry; a pandas DataFrame may mix numeric, categorical,
    string and bool columns, and outputs keep its columns and dtypes.

    Parameters
    ----------
    {n_components}
    conditional : bool, default=False
        Fit a conditional VAE: ``fit(X, y)`` learns the classes of ``y``; the
        decoder models p(x | z, y) with a learned Gaussian prior p(z | y) per
        class, so ``sample(n, y=...)`` generates rows of the requested
        classes. The encoder stays q(z | x), so ``transform(X)`` needs no
        labels (see Notes).
    {shared_parameters}

    Attributes
    ----------
    module_ : VAEModule
        The fitted torch module (on the CPU, in eval mode).
    schema_ : TabularSchema
        Column kinds and scaling learned from the training data.
    column_likelihoods_ : ndarray of object, shape (`n_features_in_`,)
        The likelihood kind of each input column: ``"gaussian"``,
        ``"quantile"``, ``"lognormal"``, ``"bernoulli"`` or ``"categorical"``
        (see ``likelihood``).
    n_iter_ : int
        Number of epochs run.
    training_plan_ : dict
        The training settings of the last ``fit`` (or ``partial_fit``) call,
        with every ``"auto"`` resolved for the data: ``max_iter``,
        ``n_iter_no_change`` and ``kl_warmup`` in epochs, ``batch_size``,
        ``learning_rate``, ``n_train_samples``, ``early_stopping`` (whether
        data were held out), ``variance_update`` and ``refit``, each under
        the name of the parameter that sets it.
    gaussian_variance_ : str
        ``gaussian_variance`` as the last fit resolved it: ``"feature"``,
        ``"decoder"`` or ``"staged"``.
    n_components_ : int
        Dimension of the latent space (``n_components`` with ``"auto"``
        resolved).
    activation_ : str
        Hidden-layer activation (``activation`` with ``"auto"`` resolved).
    loss_curve_ : list of float
        Training loss (negative ELBO per row, in the model's units) per epoch.
    best_loss_ : float
        Lowest value of ``loss_curve_``.
    validation_scores_ : list of float or None
        ELBO per row of the held-out rows (higher is better) per epoch, when
        rows were held out (``early_stopping``); None otherwise. With
        closed-form variances (``variance_update``), the lowest-scoring 1% of
        the held-out rows are left out of this mean.
    best_validation_score_ : float or None
        Best validation ELBO; its weights are the fitted ones.
    kl_per_component_ : ndarray of shape (`n_components_`,)
        Mean KL(q(z_k | x) || N(0, 1)) over the training rows (32,768 of
        them drawn at random, when there are more) per latent component, in
        nats; near 0 means the component is unused.
    n_active_components_ : int
        Number of components with ``kl_per_component_`` above 0.01 nats.
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in fit (sorted), when ``conditional=True``.
    class_count_ : ndarray of shape (n_classes,)
        Training rows per class, when ``conditional=True``.
    class_prior_ : ndarray of shape (n_classes,)
        Share of the training rows in each class, p(y); it weights the classes
        in ``score_samples`` and ``sample`` without ``y``.
    image_shape_ : tuple of int
        ``(channels, height, width)`` of the images, when
        ``architecture="conv"``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    VAEImputer : Missing values filled by the same model.
    VAEOutlierDetector : Anomaly scores from the same model.

    Notes
    -----
    With ``conditional=True`` the generative model is p(y) p(z | y)
    p(x | z, y): p(y) the class frequencies of the training data, p(z | y) =
    N(m_y, diag(s_y^2)) learned with the networks (from N(0, I)), and the
    decoder receiving y one-hot next to z. The encoder q(z | x) does not see
    y, so ``transform``, ``interpolate`` and ``traverse`` work on unlabelled
    rows; its codes then carry the class as well, and the class prior puts
    each class's draws where that class's codes lie. Methods that decode need
    the class of each row: ``inverse_transform``, ``interpolate`` and
    ``traverse`` require ``y``, ``sample`` draws the classes from
    ``class_prior_`` when ``y`` is None, and ``score_samples`` without ``y``
    estimates log p(x) = log sum_y p(y) p(x | y).

    With ``architecture="conv"`` each row is an image of ``image_shape_``;
    missing pixels reach the encoder as extra channels holding the mask, and
    the class of a conditional model joins z before the decoder's linear
    layer.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> vae = VAETransformer(n_components=2, max_iter=5, random_state=0)
    >>> vae.fit_transform(X / 16).shape
    (1797, 2)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)

    A conditional VAE generates rows of a requested class:

    >>> cvae = VAETransformer(2, conditional=True, max_iter=5, random_state=0)
    >>> cvae.fit(X / 16, y).sample(4, y=7, return_mean=True).shape
    (4, 64)
    >>> cvae.transform(X[:3] / 16).shape  # encoding needs no labels
    (3, 2)

    A convolutional VAE reads each row as an image (here 8 x 8, inferred):

    >>> conv = VAETransformer(2, architecture="conv", likelihood="bernoulli",
    ...                       max_iter=2, random_state=0)
    >>> conv.fit(X / 16).image_shape_
    (1, 8, 8)
    """

    _parameter_constraints: dict = {
        **_BaseVAE._parameter_constraints,
        **_params.AUTO_NETWORK_CONSTRAINTS,
        "conditional": ["boolean"],
    }
    _shared_docs = _params.AUTO_NETWORK_DOCS
    # Synthetic rows keep each numeric column's values, ties and range.
    _frame_numeric_kind = "quantile"

    def __init__(
        self,
        n_components="auto",
        *,
        conditional=False,
        architecture="mlp",
        image_shape=None,
        hidden_layer_sizes=(256, 128),
        activation="auto",
        likelihood="auto",
        handle_unknown="error",
        standardize=True,
        beta=1.0,
        kl_warmup=0,
        max_iter="auto",
        batch_size="auto",
        learning_rate="auto",
        n_train_samples=1,
        trim_fraction=0.0,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change="auto",
        tol=1e-4,
        refit=False,
        n_importance_samples=32,
        min_variance=1e-3,
        gaussian_variance="auto",
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
        return self.n_components_

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE on X.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Training data; NaN marks a missing entry.
            A Dask collection is streamed, partition by partition, and
            never held in memory whole (see :doc:`/user_guide/dask`).
        y : array-like of shape (n_samples,) or None, default=None
            Class labels (any type scikit-learn classifiers accept, strings
            included) when ``conditional=True``, where they are required;
            ignored otherwise.

        Returns
        -------
        self : VAETransformer
            The fitted estimator.
        """
        self._fit(X, y)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, classes=None):
        """Run one epoch over X, continuing from the current state.

        The first call sets the column kinds and scaling from its X; later
        calls keep them and the Adam state. Early stopping does not apply.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            A batch of training data; NaN marks a missing entry.
        y : array-like of shape (n_samples,) or None, default=None
            Class labels, required when ``conditional=True``; ignored
            otherwise.
        classes : array-like of shape (n_classes,) or None, default=None
            Every class of the conditional model, as in the ``partial_fit`` of
            scikit-learn's classifiers. Read on the first call; when None
            there, the classes are those of the first call's ``y``. Later
            calls may pass the same classes again, or None.

        Returns
        -------
        self : VAETransformer
            The updated estimator.
        """
        self._fit(X, y, incremental=True, classes=classes)
        return self

    # ------------------------------------------------------------------ encode
    def transform(self, X):
        """Posterior mean E[z | x] of each row.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to encode; NaN marks a missing entry. A conditional model
            needs no labels here: its encoder q(z | x) does not see them.

        Returns
        -------
        Z : ndarray of shape (n_samples, `n_components_`)
            Latent codes, in the dtype of X (float32 or float64). For a Dask
            Array, a lazy Dask Array with one row chunk per row chunk of X;
            for a Dask DataFrame, a lazy Dask DataFrame on X's index with
            columns ``get_feature_names_out()``. The fitted estimator is one
            key of the task graph, sent once to each worker.
        """
        model, X = self._validated(X)
        return model.posterior_mean(X, dtype=X.dtype)

    # ------------------------------------------------------------------ decode
    def _decode_codes(self, Z: np.ndarray, y, *, method, return_mean, random_state):
        condition = self._condition(y, Z.shape[0], method=method)
        generator = None if return_mean else self._draw_generator(random_state)
        z = torch.as_tensor(Z, dtype=torch.float32)
        return self._model().decode(
            z, condition, return_mean=return_mean, generator=generator
        )

    def inverse_transform(self, Z, y=None):
        """Decode latent codes to the decoder's mean E[x | z].

        Parameters
        ----------
        Z : array-like, Dask Array or Dask DataFrame of shape (n_samples, \
`n_components_`)
            Latent codes: finite, within +-1e4.
        y : array-like of shape (n_samples,), label or None, default=None
            Class of each row for a conditional model, where it is required
            (the decoder's mean depends on the class); one label applies to
            every row. Must be None for an unconditional model, and a single
            label when Z is a Dask collection.

        Returns
        -------
        X_rec : ndarray or DataFrame of shape (n_samples, n_features)
            Means in the original units, in the container of the fit input.
            For Dask input the result is lazy: a Dask DataFrame with the fit
            columns, dtypes and categories when fit saw a DataFrame (on the
            index 0, 1, ... of Z's rows for a Dask Array), else a Dask Array
            chunked as Z's rows (a Dask DataFrame for a Dask DataFrame Z).
        """
        check_is_fitted(self)
        Z = check_array(Z, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but this VAETransformer has "
                f"{self.n_components_} latent components (n_components_)."
            )
        if Z.size and float(np.abs(Z).max()) > MAX_CODE:
            raise ValueError(
                f"Z has values beyond +-{MAX_CODE:g}; latent codes lie within a "
                "few units of 0 (the prior is a standard normal). Pass codes from "
                "transform or sample."
            )
        return self._decode_codes(
            Z, y, method="inverse_transform", return_mean=True, random_state=None
        )

    def sample(self, n_samples=1, *, y=None, random_state=None, return_mean=False):
        """Generate rows from the model: z ~ N(0, I), then x ~ p(x | z).

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows.
        y : array-like of shape (n_samples,), label or None, default=None
            Class of each generated row, for a conditional model: labels of
            ``classes_``, or one label for every row. When None, a conditional
            model draws the classes from ``class_prior_`` (the training
            frequencies). Must be None for an unconditional model.
        random_state : int, RandomState instance or None, default=None
            Seed for the draws; None uses the estimator's ``random_state``
            (so an int there makes repeated calls identical). The latent
            draws depend on the seed alone, not on ``y``: the same seed with
            different classes gives the same "styles" in each class.
        return_mean : bool, default=False
            Return the decoder means E[x | z] instead of draws from p(x | z)
            (clean images rather than noisy pixels).

        Returns
        -------
        X_new : ndarray or DataFrame of shape (n_samples, n_features)
            Generated rows, in the container of the fit input.
        """
        check_is_fitted(self)
        n_samples = int_in_range(n_samples, "n_samples", 1)
        model = self._model()
        gen = self._draw_generator(random_state)
        eps = torch.randn(n_samples, self.n_components_, generator=gen)
        if y is None and self._is_conditional_fit():
            prior = torch.as_tensor(self.class_prior_, dtype=torch.float64)
            index = torch.multinomial(prior, n_samples, replacement=True, generator=gen)
            condition = torch.from_numpy(self._one_hot(index.numpy()))
        else:
            condition = self._condition(y, n_samples, method="sample")
        z = model.sample_prior(eps, condition)
        return model.decode(z, condition, return_mean=return_mean, generator=gen)

    # ------------------------------------------------------------------ latent tools
    def _single_code(self, x, name: str) -> np.ndarray:
        """Posterior mean of one row given as (n_features,) or (1, n_features)."""
        x = one_row(x, name)
        # Float64 whatever the input dtype, so float32 and float64 copies of
        # a row decode identically.
        model, x = self._validated(x)
        return model.posterior_mean(x)[0]

    def interpolate(
        self,
        x_start,
        x_end,
        n_steps: int = 10,
        *,
        y=None,
        return_mean: bool = True,
        random_state=None,
    ):
        """Decode a straight line in latent space between two rows.

        The line joins the posterior means E[z | x_start] and E[z | x_end] in
        ``n_steps`` evenly spaced codes, endpoints included, and each code is
        decoded: the first row is ``inverse_transform(transform(x_start))``
        and the last ``inverse_transform(transform(x_end))``.

        Parameters
        ----------
        x_start, x_end : array-like of shape (n_features,) or (1, n_features)
            The two rows (a one-row DataFrame or a Series also works).
        n_steps : int, default=10
            Number of decoded rows, at least 2.
        y : label, array-like of shape (n_steps,) or None, default=None
            Class(es) for the decoder of a conditional model, where it is
            required; must be None for an unconditional model.
        return_mean : bool, default=True
            Decoder means E[x | z]; False gives draws from p(x | z).
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
        z_start = self._single_code(x_start, "x_start")
        z_end = self._single_code(x_end, "x_end")
        Z = np.linspace(z_start, z_end, int(n_steps))
        return self._decode_codes(
            Z,
            y,
            method="interpolate",
            return_mean=return_mean,
            random_state=random_state,
        )

    def traverse(
        self,
        x,
        dimension: int,
        values=None,
        *,
        y=None,
        return_mean: bool = True,
        random_state=None,
    ):
        """Decode x's latent code with one dimension set to a range of values.

        The code is the posterior mean E[z | x]; component ``dimension`` is
        replaced by each entry of ``values`` in turn (absolute latent values,
        on the scale of the N(0, 1) prior) while the other components stay
        fixed, and each code is decoded. This shows what one latent dimension
        controls.

        Parameters
        ----------
        x : array-like of shape (n_features,) or (1, n_features)
            The row whose code is varied (a one-row DataFrame or a Series also
            works).
        dimension : int
            The latent component to vary, in ``[0, n_components_)``.
        values : array-like of shape (n_values,), default=None
            Values given to that component. None uses
            ``np.linspace(-3, 3, 7)``.
        y : label, array-like of shape (n_values,) or None, default=None
            Class(es) for the decoder of a conditional model, as in
            :meth:`interpolate`.
        return_mean : bool, default=True
            Decoder means E[x | z]; False gives draws from p(x | z).
        random_state : int, RandomState instance or None, default=None
            Seed of the draws when ``return_mean=False``; None uses the
            estimator's ``random_state``.

        Returns
        -------
        X_traversal : ndarray or DataFrame of shape (n_values, n_features)
            One decoded row per value, in the container of the fit input.
        """
        check_is_fitted(self)
        dimension = int_in_range(
            dimension,
            "dimension",
            0,
            self.n_components_ - 1,
            why=f" for this model with n_components_={self.n_components_}",
        )
        values = TRAVERSE_VALUES if values is None else values
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or values.shape[0] < 1:
            raise ValueError(
                f"values must be a non-empty 1-D array of latent values; got "
                f"shape {values.shape}."
            )
        if not np.isfinite(values).all():
            raise ValueError("values must be finite.")
        z = self._single_code(x, "x")
        Z = np.repeat(z[None, :].astype(np.float64), values.shape[0], axis=0)
        Z[:, dimension] = values
        return self._decode_codes(
            Z,
            y,
            method="traverse",
            return_mean=return_mean,
            random_state=random_state,
        )

    # ------------------------------------------------------------------ scoring
    def score_samples(self, X, y=None):
        """Importance-weighted estimate of log p(x) for each row.

        The IWAE bound with ``n_importance_samples`` posterior draws, in nats,
        for the data in their original units (every transformation's
        Jacobian is included). Missing entries are marginalized out: a row's
        score is the log-density of its observed entries. The same draws serve
        every row, so a row's score does not depend on the other rows, and
        repeated calls give identical values.

        The draws come from the encoder's posterior approximation, which is
        only as good as the training rows made it: for a row unlike them it
        can miss the posterior, and the estimate fall short of log p(x) by
        many nats. So a row whose ELBO per observed variable falls below the
        training rows' 0.1% quantile by more than that quantile lies below
        their median is estimated again, with the approximation also refined
        for that row alone (100 Adam steps on its own ELBO) and
        ``n_importance_samples`` draws taken from each of the two. Only the
        screened rows cost more, and a row's score still does not depend on
        the others.

        For a conditional model, ``y=None`` gives the marginal
        log p(x) = log sum_c p(c) p(x | c), with p(c) = ``class_prior_`` (at
        ``n_classes`` times the cost); with ``y``, the class-conditional
        log p(x | y).

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to score; NaN marks a missing entry.
        y : array-like of shape (n_samples,), label or None, default=None
            Classes of the rows, for a conditional model only (a single label
            when X is a Dask collection).

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Higher means more typical under the model. For a Dask Array, a
            lazy float64 Dask Array chunked as X's rows; for a Dask
            DataFrame, a lazy Dask Series on X's index and divisions.
        """
        check_is_fitted(self)
        if not self._is_conditional_fit():
            if y is not None:
                raise ValueError("y is only accepted by a conditional model.")
            return super().score_samples(X)
        model, X = self._validated(X)
        if y is None:
            return model.log_likelihood(X, class_prior=self.class_prior_)
        condition = self._condition(y, X.shape[0], method="score_samples")
        return model.log_likelihood(X, condition=condition)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over the rows of X.

        The held-out log-likelihood that ``GridSearchCV`` with no ``scoring``
        maximizes. A conditional model given ``y`` averages log p(x | y);
        without it, and for an unconditional model (which ignores ``y``), the
        marginal log p(x).

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to score; NaN marks a missing entry. A Dask collection is
            scored lazily and the mean computed (this call computes).
        y : array-like of shape (n_samples,) or None, default=None
            Classes of the rows, for a conditional model.

        Returns
        -------
        score : float
            Mean log-likelihood estimate, in nats per row.
        """
        check_is_fitted(self)
        if not self._is_conditional_fit():
            y = None
        return float(np.mean(self.score_samples(X, y=y)))
