"""The numpydoc validation checks that skvae's docstrings are held to.

One place for both users: ``docs/conf.py`` hands them to numpydoc, which
reports each violation as a Sphinx warning (an error in ``docs/build.sh``),
and ``tests/test_docstrings.py`` runs the same checks without Sphinx. Every
check of numpydoc (``numpydoc.validate.ERROR_MSGS``) applies except those
listed here, each with its reason.
"""

from __future__ import annotations

#: Checks left out for every object, with the reason.
EXCLUDED = {
    # "See Also" sections are written where a pointer helps (the estimators
    # point at their scikit-learn counterparts), not on every method.
    "SA01": "a See Also section is optional",
    # A one-line summary is the whole docstring's description for many
    # methods (``transform``: the codes of X); Parameters and Returns say
    # the rest.
    "ES01": "an extended summary is optional",
    # Return values are named, as in scikit-learn: ``Z : ndarray of shape
    # (n_samples, n_components)`` rather than the type alone.
    "RT02": "return values are named, as in scikit-learn",
}

#: Checks left out for the members of a class (methods, properties), with
#: the reason. Classes and functions are held to them.
EXCLUDED_FOR_MEMBERS = {
    # scikit-learn's convention: the class's Examples section shows its
    # methods at work (fit, transform, sample, ...), so each method does not
    # repeat a fit of its own.
    "EX01": "a method's Examples section is optional; its class's shows it",
}

#: The kinds of object (autodoc's ``what``) that are not members of a class.
TOP_LEVEL_KINDS = frozenset({"class", "exception", "function"})


def excluded(kind: str) -> set[str]:
    """Return the checks left out for an object of autodoc's kind ``kind``.

    Parameters
    ----------
    kind : str
        ``"class"``, ``"exception"`` or ``"function"`` for an object of a
        module; ``"method"``, ``"property"`` or ``"attribute"`` for a member
        of a class.

    Returns
    -------
    set of str
        The numpydoc check codes not applied to it.
    """
    if kind in TOP_LEVEL_KINDS:
        return set(EXCLUDED)
    return set(EXCLUDED) | set(EXCLUDED_FOR_MEMBERS)
