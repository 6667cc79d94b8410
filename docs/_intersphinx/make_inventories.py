"""Write the offline intersphinx inventories of the skvae docs.

The docs build has no network, so ``conf.py`` reads intersphinx inventories
from this folder instead of fetching ``objects.inv`` from each project. Each
inventory lists only the objects that skvae's pages and docstrings (and the
scikit-learn docstrings of the methods skvae inherits) link to, with their
public URLs, relative to the base URL in ``conf.py``.

Rerun after adding a cross-reference to a new outside object::

    pip install sphobjinv
    python docs/_intersphinx/make_inventories.py

To find the references that still lack a target, build with ``-n``
(nitpicky) and read the "reference target not found" warnings.
"""

from __future__ import annotations

from pathlib import Path

import sphobjinv as soi

HERE = Path(__file__).resolve().parent

#: project -> (version, [(name, domain, role, uri), ...]); a uri ending in
#: "#$" is the page followed by the object's name as anchor.
INVENTORIES: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = {
    "python": (
        "3",
        [
            ("int", "py", "class", "library/functions.html#$"),
            ("float", "py", "class", "library/functions.html#$"),
            ("bool", "py", "class", "library/functions.html#$"),
            ("str", "py", "class", "library/stdtypes.html#$"),
            ("dict", "py", "class", "library/stdtypes.html#$"),
            ("list", "py", "class", "library/stdtypes.html#$"),
            ("tuple", "py", "class", "library/stdtypes.html#$"),
            ("callable", "py", "function", "library/functions.html#$"),
            ("None", "py", "data", "library/constants.html#$"),
            ("True", "py", "data", "library/constants.html#$"),
            ("False", "py", "data", "library/constants.html#$"),
            ("os.PathLike", "py", "class", "library/os.html#$"),
            (
                "bltin-boolean-values",
                "std",
                "label",
                "library/stdtypes.html#bltin-boolean-values",
            ),
            ("path-like object", "std", "term", "glossary.html#term-path-like-object"),
            ("callable", "std", "term", "glossary.html#term-callable"),
            ("iterable", "std", "term", "glossary.html#term-iterable"),
            ("sequence", "std", "term", "glossary.html#term-sequence"),
        ],
    ),
    "numpy": (
        "stable",
        [
            (
                "numpy.ndarray",
                "py",
                "class",
                "reference/generated/numpy.ndarray.html#$",
            ),
            (
                "numpy.random.RandomState",
                "py",
                "class",
                "reference/random/legacy.html#$",
            ),
            (
                "numpy.random.default_rng",
                "py",
                "function",
                "reference/random/generator.html#$",
            ),
            ("numpy.nan", "py", "data", "reference/constants.html#$"),
            ("numpy.inf", "py", "data", "reference/constants.html#$"),
            (
                "numpy.linspace",
                "py",
                "function",
                "reference/generated/numpy.linspace.html#$",
            ),
            ("array_like", "std", "term", "glossary.html#term-array_like"),
            ("arrays.scalars", "std", "label", "reference/arrays.scalars.html"),
        ],
    ),
    "pandas": (
        "stable",
        [
            (
                "pandas.DataFrame",
                "py",
                "class",
                "reference/api/pandas.DataFrame.html#$",
            ),
            ("pandas.Series", "py", "class", "reference/api/pandas.Series.html#$"),
            ("pandas.NA", "py", "data", "reference/api/pandas.NA.html#$"),
        ],
    ),
    "sklearn": (
        "stable",
        [
            *(
                (name, "py", role, f"modules/generated/{name}.html#$")
                for name, role in [
                    ("sklearn.base.clone", "function"),
                    ("sklearn.set_config", "function"),
                    ("sklearn.datasets.load_digits", "function"),
                    ("sklearn.datasets.load_iris", "function"),
                    ("sklearn.datasets.load_breast_cancer", "function"),
                    ("sklearn.decomposition.PCA", "class"),
                    ("sklearn.ensemble.IsolationForest", "class"),
                    ("sklearn.ensemble.HistGradientBoostingRegressor", "class"),
                    ("sklearn.exceptions.ConvergenceWarning", "class"),
                    ("sklearn.exceptions.NotFittedError", "class"),
                    ("sklearn.impute.IterativeImputer", "class"),
                    ("sklearn.impute.KNNImputer", "class"),
                    ("sklearn.impute.MissingIndicator", "class"),
                    ("sklearn.impute.SimpleImputer", "class"),
                    ("sklearn.linear_model.LogisticRegression", "class"),
                    ("sklearn.metrics.r2_score", "function"),
                    ("sklearn.metrics.roc_auc_score", "function"),
                    ("sklearn.model_selection.GridSearchCV", "class"),
                    ("sklearn.model_selection.cross_val_score", "function"),
                    ("sklearn.model_selection.train_test_split", "function"),
                    ("sklearn.pipeline.Pipeline", "class"),
                    ("sklearn.pipeline.make_pipeline", "function"),
                    ("sklearn.preprocessing.KBinsDiscretizer", "class"),
                    ("sklearn.svm.SVC", "class"),
                    ("sklearn.utils.metadata_routing.MetadataRequest", "class"),
                ]
            ),
            ("array-like", "std", "term", "glossary.html#term-array-like"),
            ("estimator", "std", "term", "glossary.html#term-estimator"),
            ("meta-estimator", "std", "term", "glossary.html#term-meta-estimator"),
            ("metadata_routing", "std", "label", "metadata_routing.html"),
            ("df_output_transform", "std", "label", "modules/df_output_transform.html"),
            (
                "sphx_glr_auto_examples_miscellaneous_plot_set_output.py",
                "std",
                "label",
                "auto_examples/miscellaneous/plot_set_output.html",
            ),
        ],
    ),
    "torch": (
        "stable",
        [
            ("torch.device", "py", "class", "tensor_attributes.html#$"),
            ("torch.Tensor", "py", "class", "tensors.html#$"),
            ("torch.nn.Module", "py", "class", "generated/torch.nn.Module.html#$"),
            (
                "torch.set_num_threads",
                "py",
                "function",
                "generated/torch.set_num_threads.html#$",
            ),
        ],
    ),
    "matplotlib": (
        "stable",
        [
            *(
                (name, "py", role, f"api/_as_gen/{name}.html#$")
                for name, role in [
                    ("matplotlib.axes.Axes", "class"),
                    ("matplotlib.axes.Axes.scatter", "method"),
                    ("matplotlib.figure.Figure", "class"),
                    ("matplotlib.figure.SubFigure", "class"),
                    ("matplotlib.colors.Colormap", "class"),
                    ("matplotlib.pyplot.subplots", "function"),
                    ("matplotlib.pyplot.figure", "function"),
                ]
            ),
            ("matplotlib", "py", "module", "index.html#module-$"),
        ],
    ),
    "dask": (
        "stable",
        [
            ("dask.array.Array", "py", "class", "generated/dask.array.Array.html#$"),
            (
                "dask.array.from_array",
                "py",
                "function",
                "generated/dask.array.from_array.html#$",
            ),
            (
                "dask.dataframe.DataFrame",
                "py",
                "class",
                "generated/dask.dataframe.DataFrame.html#$",
            ),
            (
                "dask.dataframe.Series",
                "py",
                "class",
                "generated/dask.dataframe.Series.html#$",
            ),
            (
                "dask.dataframe.read_parquet",
                "py",
                "function",
                "generated/dask.dataframe.read_parquet.html#$",
            ),
        ],
    ),
}


def main() -> None:
    """Write one ``<project>.inv`` per entry of :data:`INVENTORIES`."""
    for project, (version, objects) in INVENTORIES.items():
        inv = soi.Inventory()
        inv.project, inv.version = project, version
        for name, domain, role, uri in objects:
            inv.objects.append(
                soi.DataObjStr(
                    name=name,
                    domain=domain,
                    role=role,
                    priority="1",
                    uri=uri,
                    dispname="-",
                )
            )
        text = inv.data_file(contract=True)
        soi.writebytes(HERE / f"{project}.inv", soi.compress(text))
        print(f"{project}.inv: {len(objects)} objects")


if __name__ == "__main__":
    main()
