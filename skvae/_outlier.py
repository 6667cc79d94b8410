"""VAEOutlierDetector: anomaly scores from the VAE's log-likelihood."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import OutlierMixin

from ._base import _BaseVAE, store_params
from ._dask import dask_inference
from ._params import document
from ._utils import Interval, StrOptions, _fit_context

#: Tukey's fence: with contamination="auto", rows whose log-likelihood lies
#: more than this many interquartile ranges below the first quartile of the
#: training scores are outliers.
TUKEY_K = 1.5


@dask_inference(
    score_samples="scores",
    decision_function="scores",
    predict="labels",
    feature_log_likelihood="features",
    score="mean",
)
@document
class VAEOutlierDetector(OutlierMixin, _BaseVAE):
    """Unsupervised outlier detection with a variational autoencoder.

    The VAE models the density of the training rows; a row's score is its
    estimated log-likelihood log p(x) in the data's original units. Lower
    scores are more abnormal, as in :class:`~sklearn.ensemble.IsolationForest`.
    Missing entries are marginalized: a row is scored on what was observed.
    On a mixed-type DataFrame the score sums Gaussian log-densities and
    categorical and Bernoulli log-probabilities, so a row with an impossible
    combination of categories scores low. It works in both of scikit-learn's
    settings: fit and score the same contaminated data (outlier detection),
    or fit on clean data and score new rows (novelty detection).

    Parameters
    ----------
    {n_components}
    contamination : "auto" or float in (0, 0.5], default="auto"
        Sets ``offset_``, the threshold of :meth:`predict`. A float is the
        expected share of outliers in the training data: ``offset_`` is that
        percentile of the training scores. ``"auto"`` assumes no rate and uses
        Tukey's fence on the training scores: Q1 - 1.5 IQR.
    score_method : {"likelihood", "reconstruction"}, default="likelihood"
        What :meth:`score_samples` returns. ``"likelihood"``: the
        importance-weighted estimate of log p(x). ``"reconstruction"``: the
        reconstruction probability of An & Cho (2015),
        E_q(z|x)[log p(x | z)], which ignores how unusual the latent code
        itself is.
    score_variance : {"auto", "feature", "shared"}, default="auto"
        Noise variance of the Gaussian columns in the fitted model, which the
        scores use. Training fits one variance per column; ``"shared"`` then
        gives every column their mean (one pooled noise variance, as in
        probabilistic PCA), ``"feature"`` keeps them. Per-column variances
        fitted on a few hundred images trust pixels that were blank in every
        training image too much, so a single stray stroke outweighs the shape
        of the digit; per-column variances are what a table of different
        quantities needs. ``"auto"`` is ``"shared"`` when the columns
        kept one unit (``standardize=False``, or ``"auto"`` on an image-like
        matrix) and ``"feature"`` otherwise. No effect with
        ``gaussian_variance="decoder"``.
    {shared_parameters}

    Attributes
    ----------
    offset_ : float
        Threshold on :meth:`score_samples`: ``decision_function`` is
        ``score_samples(X) - offset_``.
    module_, schema_, column_likelihoods_, n_iter_, training_plan_, \
gaussian_variance_, loss_curve_, best_loss_, validation_scores_, \
kl_per_component_, n_active_components_, n_features_in_, feature_names_in_
        As in :class:`~skvae.VAETransformer`.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Isolation-based outlier detection.

    Notes
    -----
    Its defaults differ from the transformer's for contaminated data: a
    trimmed likelihood (``trim_fraction=0.1``), so that anomalies shape the
    model less; a smaller network and fewer epochs, which memorize less of a
    few hundred rows; closed-form variances, so a deviation in a column the
    model predicts well counts for more. On images (``standardize="auto"``
    recognizes them) the pixels keep their common unit and the scores use
    one pooled noise variance.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEOutlierDetector
    >>> X = np.random.RandomState(0).normal(size=(300, 4))
    >>> X[:3] += 8  # three outliers
    >>> det = VAEOutlierDetector(contamination=0.01, max_iter=30, random_state=0)
    >>> det.fit_predict(X)[:3]
    array([-1, -1, -1])
    """

    _parameter_constraints: dict = {
        **_BaseVAE._parameter_constraints,
        "contamination": [
            StrOptions({"auto"}),
            Interval(Real, 0, 0.5, closed="right"),
        ],
        "score_method": [StrOptions({"likelihood", "reconstruction"})],
        "score_variance": [StrOptions({"auto", "feature", "shared"})],
    }

    def __init__(
        self,
        n_components=16,
        *,
        contamination="auto",
        score_method="likelihood",
        score_variance="auto",
        architecture="mlp",
        image_shape=None,
        hidden_layer_sizes=(128,),
        activation="relu",
        likelihood="auto",
        handle_unknown="error",
        standardize="auto",
        beta=1.0,
        kl_warmup=0,
        max_iter="auto",
        batch_size=128,
        learning_rate=1e-3,
        n_train_samples=1,
        trim_fraction=0.1,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change="auto",
        tol=1e-4,
        refit="auto",
        n_importance_samples=32,
        min_variance=1e-3,
        gaussian_variance="feature",
        variance_update="closed_form",
        device="auto",
        random_state=None,
        verbose=0,
    ):
        store_params(self, locals())

    # The training rows are contaminated: a held-out score would reward
    # fitting their anomalies, and a fixed budget ranks them better.
    _auto_early_stopping = False
    _weight_average_decay = 0.0

    def _pools_variance(self) -> bool:
        if self.score_variance == "auto":
            return self._fitted.schema.common_scale
        return self.score_variance == "shared"

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE on X and set the threshold ``offset_``.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Training data, possibly contaminated; NaN marks a missing entry.
            A Dask collection is streamed, partition by partition, and
            never held in memory whole (see :doc:`/user_guide/dask`).
        y : None
            Ignored.

        Returns
        -------
        self : VAEOutlierDetector
            The fitted detector.
        """
        rows = self._fit(X)
        if self._pools_variance():
            self._fitted.pool_variances()
        scores = self.score_samples(rows)
        if self.contamination == "auto":
            q1, q3 = np.percentile(scores, [25, 75])
            self.offset_ = float(q1 - TUKEY_K * (q3 - q1))
        else:
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
        return self

    def score_samples(self, X):
        """Normality score of each row: higher is more normal.

        With ``score_method="likelihood"`` the importance-weighted estimate of
        log p(x) (see :meth:`VAETransformer.score_samples
        <skvae.VAETransformer.score_samples>`); with ``"reconstruction"`` the
        reconstruction probability E_q(z|x)[log p(x | z)]. Both are in nats
        on the data's original units, with missing entries left out; the same
        posterior draws serve every row, so a row's score does not depend on
        the other rows.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to score; NaN marks a missing entry.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Log-likelihood or reconstruction probability per row (float64).
            For a Dask Array, a lazy Dask Array chunked as X's rows; for a
            Dask DataFrame, a lazy Dask Series on X's index and divisions.
        """
        model, X = self._validated(X)
        estimate = {
            "likelihood": "log_marginal",
            "reconstruction": "reconstruction_log_prob",
        }[self.score_method]
        return model.log_likelihood(X, estimate)

    def decision_function(self, X):
        """Score (``score_method``) minus the threshold: negative for outliers.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to score; NaN marks a missing entry.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_`` (float64). For a Dask Array,
            a lazy Dask Array chunked as X's rows; for a Dask DataFrame, a
            lazy Dask Series on X's index and divisions.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label rows as inliers (+1) or outliers (-1).

        A row is an outlier when its :meth:`decision_function` is negative.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to label; NaN marks a missing entry.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers (int64). For a Dask Array,
            a lazy Dask Array chunked as X's rows; for a Dask DataFrame, a
            lazy Dask Series on X's index and divisions.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def feature_log_likelihood(self, X):
        """Each feature's contribution to a row's log-likelihood.

        ``log p(x_j | z)`` averaged over the importance-weighted posterior of
        the row, in the original units (the standardization's Jacobian is
        included per column). The lowest entries of a row point to the
        columns that make it anomalous. The sum over a row's features is close
        to, but not the same as, :meth:`score_samples` (which also counts the
        latent code's own surprise).

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to explain; NaN marks a missing entry.

        Returns
        -------
        contributions : ndarray of shape (n_samples, n_features)
            Per-feature log-likelihood (higher is more normal); NaN where the
            entry is missing. For a Dask Array, a lazy float64 Dask Array
            chunked as X's rows; for a Dask DataFrame, a lazy Dask DataFrame
            on X's index with X's column names.
        """
        model, X = self._validated(X)
        return model.feature_log_likelihood(X)
