"""A module imported on its first attribute access, so that ``import fastkm`` imports no numba."""

import importlib
import sys
import threading

_OWN = {"_name", "_holder", "_module", "_lock"}


class LazyModule:
    """Stands for the module ``name`` and imports it when an attribute is first read.

    Unlike ``importlib.util.LazyLoader`` on Python 3.11, safe when several
    threads make their first call at once (the import system's lock
    serialises the import itself). ``holder``, the name of the module that
    keeps this object as a global: once the module is imported, that global
    names the module itself, so that later reads skip this object's
    ``__getattr__`` (a microsecond each, five times a small fit).
    """

    def __init__(self, name, holder=None):
        self._name = name
        self._holder = holder
        self._module = None
        self._lock = threading.Lock()

    def __getattr__(self, attribute):
        module = self._module
        if module is None:
            with self._lock:
                if self._module is None:
                    self._module = importlib.import_module(self._name)
                    self._rebind(self._module)
                module = self._module
        return getattr(module, attribute)

    def _rebind(self, module):
        holder = sys.modules.get(self._holder) if self._holder else None
        # Not when something was set on this object (a test's monkeypatch):
        # the holder's global must go on giving it.
        if holder is None or set(vars(self)) != _OWN:
            return
        for alias, value in list(vars(holder).items()):
            if value is self:
                setattr(holder, alias, module)

    def __repr__(self):
        return f"<lazy module {self._name!r}>"
