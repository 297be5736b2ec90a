"""An interrupted fit (Ctrl-C) leaves the estimator as it was before the call.

The long compiled loops return to Python often (``_slicing``), so a
KeyboardInterrupt comes within a fraction of a second; this puts back the
estimator's attributes (and the arrays a step updates in place) before it
goes on, so that a half-fitted model is never left behind: a fitted model
stays fitted with its old centres, a new one stays unfitted.
"""

import functools

import numpy as np


def restored_on_interrupt(*in_place):
    """Decorate a fitting method: on KeyboardInterrupt, restore ``self``'s attributes.

    ``in_place`` names the array attributes the method may change in place
    (partial_fit's centres and counts): they are copied first, and put back
    on any exception (a step stopped half-way leaves no half-moved centre).
    A random generator the estimator keeps (partial_fit's ``_random_state``)
    gets its state back too: the next call draws as if this one never ran.
    """

    def decorate(method):
        @functools.wraps(method)
        def fit(self, *args, **kwargs):
            saved = dict(self.__dict__)
            copies = {
                name: saved[name].copy() for name in in_place if isinstance(saved.get(name), np.ndarray)
            }
            generators = {
                name: value.get_state()
                for name, value in saved.items()
                if isinstance(value, np.random.RandomState) and name.startswith("_")
            }
            try:
                return method(self, *args, **kwargs)
            except BaseException as error:
                for name, copy in copies.items():
                    if saved[name].flags.writeable:  # a read-only array was stepped on a copy
                        saved[name][...] = copy
                if isinstance(error, KeyboardInterrupt):
                    self.__dict__.clear()
                    self.__dict__.update(saved)
                    for name, state in generators.items():
                        saved[name].set_state(state)
                raise

        return fit

    return decorate
