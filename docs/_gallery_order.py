"""Order of the gallery's examples: a reading order, then any new ones by name.

Named in ``conf.py`` as ``"_gallery_order.ExampleOrder"`` (sphinx-gallery
imports it and calls it with each example's file name).
"""

from pathlib import Path

#: From a first fit to the specialised models and data.
READING_ORDER = (
    "plot_digits_quickstart.py",
    "plot_pipeline_gridsearch.py",
    "plot_beta_sweep.py",
    "plot_mnist_generation.py",
    "plot_conditional_digits.py",
    "plot_synthetic_diamonds.py",
    "plot_imputation_cancer.py",
    "plot_outliers_digits.py",
    "plot_vq_mnist.py",
    "plot_parquet_out_of_core.py",
)


class ExampleOrder:
    """Sort key of sphinx-gallery's ``within_subsection_order``.

    Parameters
    ----------
    src_dir : str or path-like
        The gallery's source folder (unused).
    """

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __repr__(self):
        return "<ExampleOrder>"

    def __call__(self, filename):
        """Rank of ``filename`` in :data:`READING_ORDER`, new ones last by name."""
        name = Path(filename).name
        if name in READING_ORDER:
            return (READING_ORDER.index(name), name)
        return (len(READING_ORDER), name)
