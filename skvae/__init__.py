"""skvae: variational autoencoders with a scikit-learn interface."""

from ._base import PosteriorCollapseWarning
from ._transformer import VAETransformer

__version__ = "0.1.0"

__all__ = ["PosteriorCollapseWarning", "VAETransformer", "__version__"]
