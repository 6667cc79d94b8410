"""scikit-learn's estimator checks on every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import (
    SequenceVAE,
    VAEImputer,
    VAEOutlierDetector,
    VAETransformer,
    VQVAETransformer,
)

ESTIMATORS = [
    VAETransformer(max_iter=5, device="cpu"),
    VAEOutlierDetector(max_iter=5, device="cpu"),
    VAEImputer(max_iter=5, device="cpu"),
    VQVAETransformer(max_iter=5, device="cpu"),
    # Numeric arrays are univariate series (n_samples, n_timesteps).
    SequenceVAE(hidden_size=16, max_iter=3, device="cpu"),
]

EXPECTED_FAILURES: dict = {}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
