"""The parameters every estimator shares: constraints, docs and "auto" rules.

Each estimator declares its own ``__init__`` (scikit-learn reads the
signature) with its own default values; the meaning of a shared parameter is
written once here, in :data:`SHARED_DOCS`, and :func:`document` puts it into
each class docstring with that class's default.
"""

from __future__ import annotations

import inspect
import math
from numbers import Integral, Real

import torch

from ._networks import ACTIVATIONS
from ._utils import Interval, StrOptions

#: Tables with at least this many rows get the large-table values of the
#: ``"auto"`` settings (:func:`auto_value`).
LARGE_TABLE_ROWS = 2000
#: ``"auto"`` values, (small table, large table).
AUTO_VALUES = {
    "learning_rate": (2e-3, 3e-3),
    "n_train_samples": (20, 10),
    "refit": (True, False),
    "validation_samples": (50, 20),
}
#: ``batch_size="auto"``: about this many minibatches per epoch, within the
#: range below.
AUTO_BATCH_STEPS = 10
AUTO_BATCH_RANGE = (64, 512)
#: ``max_iter="auto"`` and ``n_iter_no_change="auto"`` are budgets of
#: optimizer steps, turned into epochs for the table's size and clipped to
#: the epoch ranges below: small tables get many short epochs, large ones
#: few long ones. ``"fixed"`` is the budget of a run without validation
#: data, which trains for exactly that many epochs.
AUTO_STEPS = {
    "max_iter": 20_000,
    "n_iter_no_change": 600,
    "fixed": 1_000,
    "kl_warmup": 1_000,
}
AUTO_EPOCHS = {
    "max_iter": (50, 1000),
    "n_iter_no_change": (5, 100),
    "fixed": (10, 100),
    "kl_warmup": (1, 20),
}
#: ``early_stopping="auto"`` holds out validation data when the held-out
#: part would have at least this many rows (scheme "rows") or entries
#: (scheme "entries").
AUTO_MIN_HELD_OUT = {"rows": 10, "entries": 20}
#: Share of the held-out rows, the lowest-scoring, that early stopping and the
#: variance calibration leave out when the variances are fitted in closed
#: form: such variances follow the training residuals closely, so a few gross
#: outliers among the held-out rows (data-entry errors) would otherwise
#: dominate the mean, end training early and inflate every variance.
VALIDATION_TRIM = 0.01

#: ``gaussian_variance="staged"`` on an image-like matrix: floor of the
#: decoded variances, as a share of the squared overall range of the pixels.
AUTO_PIXEL_VARIANCE_FLOOR = 1e-5

#: ``n_components="auto"``: latent components of an image-like matrix and of
#: any other table.
AUTO_LATENT = {"image": 32, "table": 8}
#: ``activation="auto"``: the MLP of an image-like matrix with at least this
#: many latent components gets :data:`AUTO_SMOOTH_ACTIVATION`; any other
#: model gets ReLU.
AUTO_SMOOTH_MIN_LATENT = 16
AUTO_SMOOTH_ACTIVATION = "elu"

#: Names of the hidden-layer activations.
ACTIVATION_NAMES = frozenset(ACTIVATIONS)

SHARED_CONSTRAINTS: dict = {
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "architecture": [StrOptions({"mlp", "conv"})],
    "image_shape": [None, "array-like"],
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions(set(ACTIVATION_NAMES))],
    "likelihood": [StrOptions({"auto", "gaussian", "quantile", "bernoulli"}), dict],
    "handle_unknown": [StrOptions({"error", "missing"})],
    "standardize": ["boolean", StrOptions({"auto"})],
    "beta": [Interval(Real, 0, None, closed="left")],
    "kl_warmup": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
    "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    "n_train_samples": [
        Interval(Integral, 1, None, closed="left"),
        StrOptions({"auto"}),
    ],
    "trim_fraction": [Interval(Real, 0, 0.5, closed="left")],
    "early_stopping": ["boolean", StrOptions({"auto"})],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [
        Interval(Integral, 1, None, closed="left"),
        StrOptions({"auto"}),
    ],
    "tol": [Interval(Real, 0, None, closed="left")],
    "refit": ["boolean", StrOptions({"auto"})],
    "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
    "min_variance": [Interval(Real, 0, None, closed="neither")],
    "gaussian_variance": [StrOptions({"auto", "feature", "decoder", "staged"})],
    "variance_update": [StrOptions({"auto", "closed_form", "gradient"})],
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


#: Constraints of the estimators whose network size and activation may be
#: chosen from the data (:func:`latent_size`, :func:`network_activation`).
AUTO_NETWORK_CONSTRAINTS: dict = {
    "n_components": [*SHARED_CONSTRAINTS["n_components"], StrOptions({"auto"})],
    "activation": [StrOptions({"auto", *ACTIVATION_NAMES})],
}


def auto_value(name: str, value, n_rows: int):
    """``value``, or for ``"auto"`` the setting of :data:`AUTO_VALUES` for the size."""
    if value != "auto":
        return value
    return AUTO_VALUES[name][int(n_rows >= LARGE_TABLE_ROWS)]


def auto_batch_size(n_rows: int) -> int:
    """Minibatch size of ``batch_size="auto"`` for ``n_rows`` training rows."""
    low, high = AUTO_BATCH_RANGE
    return int(min(max(n_rows // AUTO_BATCH_STEPS, low), high))


def batch_size(value, n_rows: int) -> int:
    """The minibatch size for ``n_rows`` rows: ``"auto"`` resolved, clipped."""
    size = auto_batch_size(n_rows) if value == "auto" else value
    return max(1, min(int(size), n_rows))


def epochs(
    name: str,
    value,
    steps_per_epoch: int,
    steps: dict | None = None,
    ranges: dict | None = None,
) -> int:
    """``max_iter``, ``n_iter_no_change`` or ``kl_warmup`` in epochs.

    ``"auto"`` is the step budget of :data:`AUTO_STEPS` (or of ``steps``,
    where it names ``name``) over ``steps_per_epoch`` (rounded up), clipped
    to :data:`AUTO_EPOCHS` (or to ``ranges``, where it names ``name``).
    """
    if value != "auto":
        return int(value)
    low, high = {**AUTO_EPOCHS, **(ranges or {})}[name]
    budget_steps = {**AUTO_STEPS, **(steps or {})}[name]
    wanted = math.ceil(budget_steps / max(1, steps_per_epoch))
    return int(min(max(wanted, low), high))


def budget(
    max_iter,
    n_iter_no_change,
    steps_per_epoch: int,
    *,
    validation: bool,
    steps: dict | None = None,
    ranges: dict | None = None,
) -> tuple[int, int]:
    """``max_iter`` and ``n_iter_no_change`` in epochs, ``"auto"`` resolved.

    Without validation data, ``max_iter="auto"`` is the fixed budget of
    :data:`AUTO_STEPS` ``["fixed"]``, run in full (an ``"auto"`` patience
    equals it, so no ``ConvergenceWarning``). An ``"auto"`` patience stays
    below an explicit ``max_iter``, which asks for convergence within it.
    ``steps`` overrides step budgets of :data:`AUTO_STEPS` (a model whose
    steps cost more), ``ranges`` epoch ranges of :data:`AUTO_EPOCHS`.
    """
    epochs_max = epochs("max_iter", max_iter, steps_per_epoch, steps, ranges)
    patience = epochs(
        "n_iter_no_change", n_iter_no_change, steps_per_epoch, steps, ranges
    )
    if max_iter == "auto" and not validation:
        epochs_max = epochs("fixed", "auto", steps_per_epoch, steps, ranges)
        if n_iter_no_change == "auto":
            patience = epochs_max
    elif n_iter_no_change == "auto" and epochs_max > 1:
        patience = min(patience, epochs_max - 1)
    return epochs_max, patience


def early_stopping(value, scheme: str | None, n_held_out: int) -> bool:
    """``early_stopping`` resolved: ``"auto"`` holds out data when enough exists.

    ``scheme`` None: the estimator's ``"auto"`` never holds out data.
    """
    if value != "auto":
        return bool(value)
    return scheme is not None and n_held_out >= AUTO_MIN_HELD_OUT[scheme]


def resolved_plan(plan, params: dict) -> dict:
    """The training settings a fit used, under the estimator's parameter names.

    ``"auto"`` values resolved for the data (the ``training_plan_``
    attribute). Only settings the estimator has a parameter for are listed;
    ``max_iter``, ``n_iter_no_change`` and ``kl_warmup`` are in epochs.
    """
    settings = {
        "max_iter": int(plan.max_iter),
        "n_iter_no_change": int(plan.n_iter_no_change),
        "batch_size": int(plan.batch_size),
        "learning_rate": float(plan.learning_rate),
        "kl_warmup": int(plan.kl_warmup),
        "n_train_samples": int(plan.n_samples),
        "early_stopping": plan.validation is not None,
        "variance_update": "closed_form" if plan.variance_step else "gradient",
        "refit": bool(plan.refit),
    }
    return {name: value for name, value in settings.items() if name in params}


def latent_size(value, pixels: bool) -> int:
    """``n_components`` with ``"auto"`` resolved (:data:`AUTO_LATENT`).

    ``pixels``: whether the columns are pixels (``TabularSchema.pixels``).
    """
    if value != "auto":
        return int(value)
    return AUTO_LATENT["image" if pixels else "table"]


def network_activation(
    value: str, *, pixels: bool, n_components: int, architecture: str
) -> str:
    """``activation`` with ``"auto"`` resolved.

    ``"auto"``: :data:`AUTO_SMOOTH_ACTIVATION` for the MLP of a pixel matrix
    (``pixels``) with at least :data:`AUTO_SMOOTH_MIN_LATENT` latent
    components, ReLU otherwise.
    """
    if value != "auto":
        return value
    smooth = pixels and architecture == "mlp" and n_components >= AUTO_SMOOTH_MIN_LATENT
    return AUTO_SMOOTH_ACTIVATION if smooth else "relu"


def hidden_sizes(value) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of positive ints.

    Raises
    ------
    ValueError
        If an entry is not a positive integer.
    """
    sizes = (value,) if isinstance(value, Integral) else tuple(value)
    if not all(isinstance(s, Integral) and s >= 1 for s in sizes):
        raise ValueError(
            f"hidden_layer_sizes must contain positive integers, got {value!r}."
        )
    return tuple(int(s) for s in sizes)


# ---------------------------------------------------------------------- docs
SHARED_DOCS: dict[str, str] = {
    "n_components": """int, default={default}
    Dimension of the latent space.""",
    "architecture": """{{"mlp", "conv"}}, default={default}
    Encoder and decoder networks. ``"mlp"``: fully connected layers of
    ``hidden_layer_sizes``. ``"conv"``, for images stored as rows of pixels:
    two 3x3 convolutions with stride 2 (32 and 64 channels) and one linear
    layer to the latent code, mirrored by transposed convolutions in the
    decoder; every column must then share one likelihood. Each convolution
    halves the height and width (rounding up), so any image size works.""",
    "image_shape": """tuple of int or None, default={default}
    Shape of one image for ``architecture="conv"``: ``(height, width)``, or
    ``(channels, height, width)`` for rows that flatten a channels-first
    array in C order. None means a square single-channel image. Read on the
    first fit; ignored with ``architecture="mlp"``.""",
    "hidden_layer_sizes": """tuple of int, default={default}
    Widths of the encoder's hidden layers; the decoder mirrors them. An empty
    tuple gives a linear encoder and decoder (probabilistic PCA fitted by
    variational inference). Not used with ``architecture="conv"``.""",
    "activation": """{{"relu", "elu", "gelu", "tanh", "silu", "leaky_relu"}}, \
default={default}
    Hidden-layer activation.""",
    "likelihood": """{{"auto", "gaussian", "quantile", "bernoulli"}} or dict, \
default={default}
    Observation model of each column; the fitted choice is
    ``column_likelihoods_``. ``"auto"`` decides by dtype: numeric columns are
    Gaussian (on the standardized scale), whatever values they took in fit, so
    any finite value is valid later (values outside the fit range get a low
    likelihood, not an error); in a DataFrame, categorical, object and string
    columns are categorical (softmax over the categories seen in fit, one-hot
    for the encoder) and bool and two-valued label columns Bernoulli.
    ``VAETransformer`` gives the numeric columns of a DataFrame the
    ``"quantile"`` kind instead, so that its samples keep each column's
    values, ties and range; there an integer column with 2 to 64 distinct
    values in at least 2,000 rows is categorical over its values (which
    keeps values that go together across columns together), and a value
    not seen in fit gets a low likelihood, not an error. ``"bernoulli"``
    also accepts values in [0, 1] (the term is then the binary
    cross-entropy). ``"quantile"`` models a Gaussian
    on each column's normal scores, through a monotone map of up to 1,000 of
    its quantiles, and decodes back through them: outputs stay within the fit
    range and values shared by many rows stay shared. A single kind applies to
    the numeric columns; a dict maps column names (or positions) to kinds,
    also ``"lognormal"`` (Gaussian on log x, for positive skewed columns) and,
    for DataFrame columns, ``"categorical"``; unlisted columns are ``"auto"``.
    Log-likelihoods include the Jacobian of every transformation. On a
    DataFrame, decoded outputs keep its columns, dtypes and categories.""",
    "handle_unknown": """{{"error", "missing"}}, default={default}
    What a category not seen in fit does: raise a ``ValueError``, or count as
    a missing entry. Not used by integer columns that ``likelihood="auto"``
    made categorical: a value not seen in fit is scored as one more category
    the model never observed.""",
    "standardize": """bool or "auto", default={default}
    Whether the Gaussian columns are centered and scaled to unit variance
    inside the model; outputs and log-likelihoods are in the original units
    either way. False keeps the columns in their units, for columns that
    share one (pixels): ``min_variance`` is then a floor in those units.
    ``"auto"`` reads the data: a matrix of at least 36 columns that share
    one unit and range (most columns often within 5% of the overall range
    of its overall minimum or maximum, as pixels are) keeps its unit,
    divided by its overall range, so that results do not depend on the
    unit (pixels in [0, 1] or 0..255 give the same model, and
    log-likelihoods that differ by the Jacobian); any other table is
    standardized per column. Standardized columns of such an image-like
    matrix use at least a tenth of the median pixel scale, so that a pixel
    blank (or nearly) in training does not make new ink there infinitely
    unlikely, and results again do not depend on the unit.""",
    "beta": """float, default={default}
    Weight of the KL term (beta-VAE): larger values give a smoother latent
    space at the cost of reconstruction.""",
    "kl_warmup": """int or "auto", default={default}
    Epochs over which the KL weight rises linearly from 0 to ``beta``;
    stopping rules wait for its end. ``"auto"``: 20 epochs, or as many as
    1,000 minibatch steps take where that is fewer (large tables, whose
    epochs are long).""",
    "max_iter": """int or "auto", default={default}
    Maximum number of epochs. ``"auto"`` sizes it to the table: with
    validation data, enough epochs for 20,000 minibatch steps (from 50 to
    1,000 epochs), and the stopping rule normally ends training long before;
    without (``early_stopping`` off, or resolved off), a fixed budget of
    1,000 steps (from 10 to 100 epochs) that always runs in full.""",
    "batch_size": """int or "auto", default={default}
    Minibatch size, clipped to the number of training rows. ``"auto"``:
    about 10 minibatches per epoch, from 64 to 512 rows each.""",
    "learning_rate": """float or "auto", default={default}
    Adam step size. ``"auto"``: 2e-3, or 3e-3 from 2,000 rows on.""",
    "n_train_samples": """int or "auto", default={default}
    Importance samples per row in the training bound: 1 trains on the ELBO,
    K > 1 on the tighter importance-weighted bound (MIWAE with missing
    entries) at about K times the decoder work. ``"auto"``: 20, or 10 from
    2,000 rows on.""",
    "trim_fraction": """float in [0, 0.5), default={default}
    Share of each minibatch's rows with the worst bound left out of the
    gradient (a trimmed likelihood), so that outliers in the training data
    shape the model less. 0 trains on every row.""",
    "early_stopping": """bool or "auto", default={default}
    Hold out ``validation_fraction`` of the data, stop after
    ``n_iter_no_change`` epochs without an improvement of the validation
    score by more than ``tol`` and restore the best epoch's weights. What is
    held out and scored depends on the estimator (see ``validation_scores_``).
    When False, training stops when the training loss stops improving in the
    same sense. ``"auto"``: on when the held-out part has at least 10 rows
    (20 entries for the imputer); the outlier detector's ``"auto"`` is off
    (its training rows hold the anomalies, which a held-out score would
    reward fitting).""",
    "validation_fraction": """float, default={default}
    Share of the data held out for early stopping (the imputer's share of
    the observed entries is capped at 20,000 entries).""",
    "n_iter_no_change": """int or "auto", default={default}
    Patience in epochs (warm-up epochs not counted). With
    ``n_iter_no_change >= max_iter`` exactly ``max_iter`` epochs run and no
    ``ConvergenceWarning`` is raised. ``"auto"``: 600 minibatch steps' worth
    of epochs, from 5 to 100, and less than an explicit ``max_iter``.""",
    "tol": """float, default={default}
    Smallest improvement that resets the patience.""",
    "refit": """bool or "auto", default={default}
    With ``early_stopping``: after the epoch count is chosen, train again
    from the initial weights on all the data for that many epochs (a
    second training run). ``"auto"``: refit below 2,000 rows.""",
    "n_importance_samples": """int, default={default}
    Posterior draws K per row in the importance-weighted estimates
    (``score_samples``, imputations, explanations). The same draws serve
    every row, so a row's result does not depend on the other rows.""",
    "min_variance": """float, default={default}
    Floor of the Gaussian variances, in standardized units (data units with
    ``standardize=False``); keeps the density bounded on constant
    columns.""",
    "gaussian_variance": """{{"auto", "feature", "decoder", "staged"}}, \
default={default}
    ``"feature"``: one variance per Gaussian column, shared by every row.
    ``"decoder"``: the decoder outputs a variance next to each mean, so the
    noise level follows the latent code (twice the Gaussian outputs).
    ``"staged"``: the model trains with ``"feature"`` variances; then the
    decoder gains a variance output per Gaussian column, a linear map of its
    last hidden layer started at the shared variances. Three phases refit
    the model around them, each with early stopping on the same 10% of the
    training rows (at most 200 epochs, and no more than the fit's
    ``max_iter``) and never ending worse on them than it started: the
    variance outputs alone and then the whole decoder, with the encoder
    fixed; then the whole model on the ELBO, at a third of the step size.
    Log-likelihoods, samples, the noise and the decoded means
    (``inverse_transform``) follow the refitted decoder; the codes
    (``transform``) are those of ``"feature"`` up to the last phase's
    changes to the encoder. With ``verbose=1`` each phase shows a progress
    bar with its held-out loss. On an image-like matrix (see
    ``standardize``) the floor of these variances is 1e-5 of the squared
    pixel range, in any unit; otherwise ``min_variance``. It needs the MLP
    architecture and in-memory data; ``partial_fit`` trains the staged
    model as a whole and a first ``partial_fit`` call has no stage.
    ``"auto"``: ``"staged"`` for an image-like matrix fitted in memory with
    the MLP architecture, ``"feature"`` otherwise. The resolved value is
    ``gaussian_variance_``.""",
    "variance_update": """{{"auto", "gradient", "closed_form"}}, default={default}
    How the ``"feature"`` variances are learned: by the optimizer's steps,
    or (``"closed_form"``) also set after every epoch to each column's mean
    posterior squared residual, their optimum given the network, with one
    more pass after the last epoch. The closed form fits small tables that
    gradient steps leave near the start value, but can overfit
    near-constant columns: a pixel blank in almost every training image gets
    a variance near the floor, and a rare stroke there in new data scores
    very low. With early stopping, closed-form variances are then scaled up
    by one factor (at least 1) fitted to the held-out data: the held-out
    rows' expected squared residuals, or the imputer's held-out entries'
    errors. The held-out rows' early-stopping score and factor then leave
    out the lowest-scoring 1% of those rows, so that a few gross outliers
    (data-entry errors) neither end training early nor widen every
    variance. ``"auto"``: the closed form, except for image-like matrices
    (see ``standardize``), which get gradient steps.""",
    "device": """str or torch.device, default={default}
    ``"auto"`` uses CUDA when available, else the CPU; or ``"cpu"``,
    ``"cuda"``, ``"cuda:1"``, ... The fitted module stays on the CPU between
    calls, so fitted estimators pickle and load anywhere.""",
    "random_state": """int, RandomState instance or None, default={default}
    Seeds initialisation, minibatches, noise and draws. An int makes every
    result reproducible on the CPU. The global torch and numpy generators
    are never seeded or consumed.""",
    "verbose": """int, default={default}
    0 is silent; 1 shows a progress bar over epochs with the training loss
    and validation score.""",
}

#: Docs of the parameters of :data:`AUTO_NETWORK_CONSTRAINTS`, for the
#: estimators that take them (their ``_shared_docs``).
AUTO_NETWORK_DOCS: dict[str, str] = {
    "n_components": f"""int or "auto", default={{default}}
    Dimension of the latent space. ``"auto"``: {AUTO_LATENT["image"]} for an
    image-like matrix (see ``standardize``; pixels modelled as Bernoulli
    count too), {AUTO_LATENT["table"]} for any other table. The fitted value
    is ``n_components_``.""",
    "activation": f"""{{{{"auto", "relu", "elu", "gelu", "tanh", "silu", \
"leaky_relu"}}}}, default={{default}}
    Hidden-layer activation. ``"auto"``: ELU for the MLP of an image-like
    matrix (as for ``n_components``) with at least {AUTO_SMOOTH_MIN_LATENT}
    latent components, ReLU otherwise (fewer components, as in a 2-D
    embedding, tables, and ``architecture="conv"``). The fitted choice is
    ``activation_``.""",
}

_MARKER = "    {shared_parameters}\n"


def document(cls: type) -> type:
    """Put the shared parameters, with ``cls``'s defaults, into its docstring.

    A line ``{name}`` (indented four spaces) in the docstring is replaced by
    that shared parameter's entry, and the line ``{shared_parameters}`` by
    the entries of all the others, in the order of ``cls.__init__``'s
    signature. A class's ``_shared_docs`` replace entries of
    :data:`SHARED_DOCS`.
    """
    doc = cls.__doc__
    if doc is None or _MARKER not in doc:
        raise ValueError(f"{cls.__name__} docstring lacks the shared marker.")
    rest = []
    docs = {**SHARED_DOCS, **getattr(cls, "_shared_docs", {})}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name not in docs:
            continue
        text = docs[name].format(default=_shown(param.default))
        entry = "".join(f"    {line}\n" for line in f"{name} : {text}".split("\n"))
        marker = f"    {{{name}}}\n"
        if marker in doc:
            doc = doc.replace(marker, entry)
        else:
            rest.append(entry)
    cls.__doc__ = doc.replace(_MARKER, "".join(rest))
    return cls


def _shown(value) -> str:
    """A default as numpydoc shows it: strings in double quotes."""
    return f'"{value}"' if isinstance(value, str) else repr(value)
