"""skvae: variational autoencoders with a scikit-learn interface."""

from . import plotting  # matplotlib is imported by its functions, not here
from ._base import PosteriorCollapseWarning
from ._imputer import VAEImputer
from ._outlier import VAEOutlierDetector
from ._persist import inspect, load, save
from ._seqvae import SequenceVAE
from ._transformer import VAETransformer
from ._vqvae import VQVAETransformer

__version__ = "0.1.0"

__all__ = [
    "PosteriorCollapseWarning",
    "SequenceVAE",
    "VAEImputer",
    "VAEOutlierDetector",
    "VAETransformer",
    "VQVAETransformer",
    "__version__",
    "inspect",
    "load",
    "plotting",
    "save",
]
