"""numba's on-disk cache, pointed at fastkm's cache directory (see ``fastkm._cache``).

numba's own locators write into the package's ``__pycache__`` (site-packages,
which ``pip uninstall`` leaves behind) and skip any directory they cannot
write, so a read-only prebuilt cache is never loaded. This cache:

- keeps every kernel in one directory outside the package, read even when it
  cannot be written (saving is then skipped);
- stamps entries with a digest of all kernel sources instead of one file's
  modification time (an edited helper invalidates its callers; reinstalling
  the same sources does not);
- loads a kernel without numba's full target refresh, which imports numba's
  whole library of typed extensions (0.4 s of a warm first fit); only the
  runtime the loaded code calls into is started (``_runtime``, its code
  loaded from the cache directory too). Compiling refreshes the
  target itself, so a later compile in the process is unaffected;
- reports a kernel compiled in process once, through ``logging``.

Where no directory can be read or written, kernels compile in memory.
"""

import contextlib
import logging
import os
import threading

from numba.core import caching

from .. import _cache
from . import _runtime

logger = logging.getLogger("fastkm")

_state = threading.local()
_noticed = set()


class _Locator(caching._CacheLocator):
    """Every fastkm kernel in one directory, stamped by the digest of the kernel sources."""

    def __init__(self, py_func, root):
        self._py_file = py_func.__code__.co_filename
        self._lineno = py_func.__code__.co_firstlineno
        self._root = root

    def ensure_cache_path(self):
        os.makedirs(self._root, exist_ok=True)

    def get_cache_path(self):
        return str(self._root)

    def get_source_stamp(self):
        return _cache.source_digest()

    def get_disambiguator(self):
        return str(self._lineno)


class _Impl(caching.CompileResultCacheImpl):
    def __init__(self, py_func):
        self._lineno = py_func.__code__.co_firstlineno
        self._locator = _Locator(py_func, _cache.cache_root())
        module = py_func.__module__.rsplit(".", 1)[-1]
        self._filename_base = self.get_filename_base(f"{module}.{py_func.__qualname__}", "")

    def reduce(self, cres):
        # numba saves the environment of every function linked into the
        # kernel, and loading one imports its module: numba.np.arrayobj for
        # np.empty's, 0.1 s of a warm first fit. An environment holds the
        # Python objects a function uses; a callee holding none is left out
        # (callees compiled as IR, ``_linking``, never get theirs set).
        *data, referenced = super().reduce(cres)
        return (*data, tuple(env for env in referenced if len(env.consts) > 0))


class KernelCache(caching.Cache):
    """numba's per-function index + data files, in fastkm's cache directory."""

    _impl_class = _Impl

    def load_overload(self, sig, target_context):
        data = None
        _runtime.start(target_context)  # here, not within a compile (see ``_runtime``)
        if _cache.readable():
            try:
                data = self._load_overload(sig, target_context)
            except (OSError, EOFError, ValueError):
                data = None
        if data is None:
            logger.debug("fastkm: compiling %s%s", self._py_func.__qualname__, sig)
            _notice_compiling(self._py_func)
        return data

    def save_overload(self, sig, data):
        try:
            # numba rewrites a function's whole index to add an entry: two
            # processes saving at once would drop one's entry.
            with _cache.locked("save"):
                self._save_overload(sig, data)
        except OSError as error:
            logger.debug("fastkm: could not save %s to the cache: %s", self._py_func.__qualname__, error)


def _notice_compiling(py_func):
    """One ``logging`` record per process when kernels compile in process (a call waits)."""
    if getattr(_state, "quiet", False) or "compiling" in _noticed:
        return
    _noticed.add("compiling")
    where = _cache.cache_root()
    if _cache.writable(where):
        place = f"they are cached in {where}"
    else:
        place = f"no cache directory can be written ({where}): they are kept in memory only"
    logger.warning(
        "fastkm: compiling kernels (first: %s); this call waits for the compiler (%s). "
        "`fastkm compile` compiles them all ahead of time.",
        py_func.__qualname__,
        place,
    )


@contextlib.contextmanager
def quiet():
    """No compile notice inside (``fastkm compile`` reports what it compiles itself)."""
    previous = getattr(_state, "quiet", False)
    _state.quiet = True
    try:
        yield
    finally:
        _state.quiet = previous


def attach(dispatcher):
    """Give ``dispatcher`` fastkm's disk cache."""
    dispatcher._cache = KernelCache(dispatcher.py_func)
    return dispatcher
