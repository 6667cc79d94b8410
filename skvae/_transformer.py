"""VAETransformer: dimensionality reduction, generation and density."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ._base import _BaseVAE
from ._utils import _fit_context, draw_seeds


class VAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _BaseVAE):
    """Variational autoencoder as a scikit-learn transformer.

    An encoder network maps each row to a Gaussian posterior q(z | x) over
    ``n_components`` latent variables; a decoder maps z to the parameters of
    p(x | z), one likelihood per column (Gaussian or Bernoulli). Training
    maximizes the evidence lower bound over the observed entries.
    ``transform`` returns the posterior means, ``inverse_transform`` decodes
    latent codes, ``sample`` generates new rows and ``score_samples``
    estimates log p(x) by importance sampling.

    Numeric columns are standardized inside the estimator; every output is in
    the original units. NaN marks a missing entry: it is left out of the
    likelihood, and the encoder is told which entries are missing.

    Parameters
    ----------
    n_components : int, default=8
        Dimension of the latent space.
    hidden_layer_sizes : tuple of int, default=(256, 128)
        Widths of the encoder's hidden layers; the decoder mirrors them. An
        empty tuple gives a linear encoder and decoder (probabilistic PCA
        fitted by variational inference).
    activation : {"relu", "elu", "gelu", "tanh", "silu", "leaky_relu"}, \
            default="relu"
        Hidden-layer activation.
    likelihood : {"auto", "gaussian", "bernoulli"} or dict, default="auto"
        Observation model. ``"auto"``: columns whose observed values are
        exactly {0, 1} are Bernoulli, the rest Gaussian. ``"bernoulli"`` also
        accepts values in [0, 1] (grey-level pixels; the term is then the
        binary cross-entropy). A dict maps column names (or positions) to a
        kind; unlisted columns are ``"auto"``.
    beta : float, default=1.0
        Weight of the KL term (beta-VAE). Larger values give a smoother, more
        regular latent space at the cost of reconstruction quality.
    kl_warmup : int, default=0
        Number of epochs over which the KL weight rises linearly from 0 to
        ``beta``; helps against posterior collapse with strong decoders.
    max_iter : int, default=200
        Maximum number of epochs.
    batch_size : int, default=128
        Minibatch size; clipped to the number of training rows.
    learning_rate : float, default=1e-3
        Adam step size.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, stop when the validation
        ELBO has not improved by more than ``tol`` for ``n_iter_no_change``
        epochs, and restore the best weights. When False, training stops
        when the training loss stops improving in the same sense.
    validation_fraction : float, default=0.1
        Share of rows held out for early stopping.
    n_iter_no_change : int, default=10
        Patience, in epochs (not counting KL warm-up epochs). With
        ``n_iter_no_change >= max_iter`` exactly ``max_iter`` epochs run and no
        ``ConvergenceWarning`` is raised.
    tol : float, default=1e-4
        Minimum improvement, in nats per row, that resets the patience.
    n_importance_samples : int, default=32
        Number of posterior draws K in the importance-weighted estimate of
        log p(x) used by ``score_samples`` and ``score``.
    min_variance : float, default=1e-3
        Floor of the Gaussian variances, in standardized units; keeps the
        density bounded on constant or near-constant columns.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; or ``"cpu"``,
        ``"cuda"``, ``"cuda:1"``, ... The fitted module is kept on the CPU
        between calls, so fitted estimators pickle and load anywhere.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, minibatch order and noise. An int makes
        ``fit``, ``score_samples`` and ``sample`` reproducible on CPU. The
        global torch and numpy generators are never seeded or consumed.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar over epochs with the training
        loss and validation ELBO.

    Attributes
    ----------
    module_ : VAEModule
        The fitted torch module (on the CPU, in eval mode).
    schema_ : TabularSchema
        Column kinds and standardization learned from the training data.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Training loss (negative ELBO per row, standardized units) per epoch.
    best_loss_ : float
        Lowest value of ``loss_curve_``.
    validation_scores_ : list of float or None
        Validation ELBO per row (higher is better) per epoch, when
        ``early_stopping=True``.
    best_validation_score_ : float or None
        Best validation ELBO; its weights are the fitted ones.
    kl_per_component_ : ndarray of shape (n_components,)
        Mean KL(q(z_k | x) || N(0, 1)) over the training rows, per latent
        component, in nats; near 0 means the component is unused.
    n_active_components_ : int
        Number of components with ``kl_per_component_`` above 0.01 nats.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VAETransformer(n_components=2, max_iter=5, random_state=0)
    >>> vae.fit_transform(X / 16).shape
    (1797, 2)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.n_components

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE on X.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training data; NaN marks a missing entry.
        y : None
            Ignored.

        Returns
        -------
        self : VAETransformer
            The fitted estimator.
        """
        return self._fit(X, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Run one epoch over X, continuing from the current state.

        The first call sets the column kinds and standardization from its X;
        later calls keep them and the Adam state. Early stopping does not
        apply.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            A batch of training data; NaN marks a missing entry.
        y : None
            Ignored.

        Returns
        -------
        self : VAETransformer
            The updated estimator.
        """
        return self._fit(X, incremental=True)

    def transform(self, X):
        """Posterior mean E[z | x] of each row.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows to encode; NaN marks a missing entry.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Latent codes, in the dtype of X (float32 or float64).
        """
        X, x, mask = self._encode(X)
        Z = self._posterior_mean(x, mask).cpu().numpy()
        return Z.astype(X.dtype, copy=False)

    def inverse_transform(self, Z):
        """Decode latent codes to the decoder's mean E[x | z].

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components)
            Latent codes.

        Returns
        -------
        X_rec : ndarray or DataFrame of shape (n_samples, n_features)
            Means in the original units, in the container of the fit input.
        """
        check_is_fitted(self)
        Z = check_array(Z, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but this VAETransformer has "
                f"n_components={self.n_components}."
            )
        device = self._inference_device()
        z = torch.as_tensor(Z, dtype=torch.float32, device=device)
        with torch.inference_mode(), self._module_on(device) as module:
            means = module.mean(module.generative(z))
        return self._to_output(self.schema_.decode(means))

    def sample(self, n_samples=1, *, y=None, random_state=None, return_mean=False):
        """Generate rows from the model: z ~ N(0, I), then x ~ p(x | z).

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows.
        y : None
            Class labels for a conditional model; this estimator is not
            conditional, so only None is accepted.
        random_state : int, RandomState instance or None, default=None
            Seed for the draws; None uses the estimator's ``random_state``
            (so an int there makes repeated calls identical).
        return_mean : bool, default=False
            Return the decoder means E[x | z] instead of draws from p(x | z)
            (clean images rather than noisy pixels).

        Returns
        -------
        X_new : ndarray or DataFrame of shape (n_samples, n_features)
            Generated rows, in the container of the fit input.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool):
            raise ValueError(f"n_samples must be an int, got {n_samples!r}.")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        if y is not None:
            raise ValueError("y is only accepted by a conditional model.")
        seed = draw_seeds(
            self.random_state if random_state is None else random_state, 1
        )[0]
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(int(n_samples), self.n_components, generator=gen)
        with torch.inference_mode():
            params = self.module_.generative(z)
            values = (
                self.module_.mean(params)
                if return_mean
                else self.module_.sample_x(params, gen)
            )
        return self._to_output(self.schema_.decode(values))
