"""numba's runtime (its reference counting and allocation), started from fastkm's cache.

Compiled kernels call into numba's runtime: C helpers, which are only
registered by name, and seven small functions (atomic reference counts,
``NRT_decref``) that numba builds as LLVM IR and compiles in every process
that starts it: about 7 ms of a warm first fit, more than loading the
kernels it runs. The machine code of those functions is saved in the cache
directory as numba saves a kernel (object code, with the IR later compiles
link) and loaded from there, as a cached kernel is, in about 1 ms.

The saved code is specific to numba, llvmlite, this CPU and numba's runtime
debugging settings, which name the file. A file that cannot be read or
loaded is compiled again, as numba would. fastkm starts the runtime before
its first kernel is loaded or compiled (numba would start it inside the
compile), so that the one saved is made as numba makes it.
"""

import hashlib
import logging
import pickle

import llvmlite
import numba
from llvmlite import binding as ll
from numba.core import config
from numba.core.compiler_lock import global_compiler_lock
from numba.core.runtime import _nrt_python, nrt, nrtdynmod

from .. import _cache
from ._linking import numba_libraries

logger = logging.getLogger("fastkm")


def start(target_context):
    """Start numba's runtime once per process, its compiled part loaded from the cache when there."""
    if nrt.rtsys._init:
        return
    with global_compiler_lock:
        if nrt.rtsys._init:  # another thread, or numba (a compile started it)
            return
        _register_helpers()
        path = _runtime_path(target_context)
        # Maybe within a kernel's compile, whose libraries only link.
        with numba_libraries(target_context):
            library = _load(target_context, path)
            compiled = library is None
            if compiled:
                library = _compile(target_context)
        # What numba's ``rtsys.initialize`` leaves, with this library.
        nrt.rtsys._library = library
        nrt.rtsys._init = True
        if compiled:
            _save(library, path)


def _register_helpers():
    """The runtime's C functions, by the names compiled code calls them (as numba registers them)."""
    if config.NRT_STATS:
        _nrt_python.memsys_enable_stats()
    for py_name, address in _nrt_python.c_helpers.items():
        ll.add_symbol(py_name if py_name.startswith("_") else f"NRT_{py_name}", address)


def _runtime_path(target_context):
    """The file of the runtime's code for this numba, llvmlite and CPU."""
    codegen = target_context.codegen()
    debugging = (config.DEBUG_NRT, config.DEBUG_NRT_STACK_LIMIT)  # they change the code made
    key = repr((numba.__version__, llvmlite.__version__, codegen.magic_tuple(), debugging))
    return _cache.cache_root() / f"runtime-{hashlib.sha256(key.encode()).hexdigest()[:16]}.nrt"


def _compile(target_context):
    """Compile the runtime's functions as numba does, keeping their object code to save."""
    module, library = nrtdynmod.create_nrt_module(target_context)
    library.enable_object_caching()
    library.add_ir_module(module)
    library.finalize()
    return library


def _load(target_context, path):
    """The runtime's library loaded from ``path``, or None (no file, or one that does not load)."""
    try:
        with open(path, "rb") as file:
            state = pickle.load(file)
        if state[1] != "object":  # machine code with the IR to link, as ``_save`` writes
            raise ValueError(f"a library saved as {state[1]!r}")
        return target_context.codegen().unserialize_library(state)
    except FileNotFoundError:
        return None
    except Exception as error:  # a truncated or foreign file: compile instead
        logger.debug("fastkm: could not load numba's runtime from %s: %s", path, error)
        return None


def _save(library, path):
    """Write the library's code to ``path``; skipped where it cannot be written."""
    try:
        state = library.serialize_using_object_code()
        _cache.write_file(path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as error:  # the runtime runs whether or not it was saved
        logger.debug("fastkm: could not save numba's runtime to %s: %s", path, error)
