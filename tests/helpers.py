"""Small helpers shared by the test modules."""

import warnings


def error_of(fn, *args, **kwargs):
    """(exception type, message) that ``fn(*args, **kwargs)`` raises, warnings silenced.

    (None, None) if it raises nothing: comparing this for fastkm and for
    scikit-learn checks that both fail the same way.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn(*args, **kwargs)
        except Exception as exc:
            return type(exc), str(exc)
    return None, None
