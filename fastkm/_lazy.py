"""A module imported on its first attribute access, so that ``import fastkm`` imports no numba."""

import importlib
import threading


class LazyModule:
    """Stands for the module ``name`` and imports it when an attribute is first read.

    Unlike ``importlib.util.LazyLoader`` on Python 3.11, safe when several
    threads make their first call at once (the import system's lock
    serialises the import itself).
    """

    def __init__(self, name):
        self._name = name
        self._module = None
        self._lock = threading.Lock()

    def __getattr__(self, attribute):
        module = self._module
        if module is None:
            with self._lock:
                if self._module is None:
                    self._module = importlib.import_module(self._name)
                module = self._module
        return getattr(module, attribute)

    def __repr__(self):
        return f"<lazy module {self._name!r}>"
