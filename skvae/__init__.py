"""skvae: variational autoencoders with a scikit-learn interface."""

from ._base import PosteriorCollapseWarning
from ._outlier import VAEOutlierDetector
from ._transformer import VAETransformer

__version__ = "0.1.0"

__all__ = [
    "PosteriorCollapseWarning",
    "VAEOutlierDetector",
    "VAETransformer",
    "__version__",
]
