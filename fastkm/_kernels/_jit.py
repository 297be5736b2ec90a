"""The one place where fastkm's compilation options are declared."""

import contextlib
import functools
import pickle
import sys

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import intrinsic

from ._disk_cache import attach
from ._linking import Kernel, KernelForTypes

# Row chunk processed as one unit. Work is partitioned by this fixed size, never
# by the thread count, so results are identical for any number of threads.
CHUNK = 256

# Upper bound on the number of row groups (and so of per-group partial buffers).
MAX_GROUPS = 64

# Features are processed in blocks of this many columns (zero-padded), which
# lets the low-d case (colour data, d = 3) run as one fused, vectorised pass.
FEATURE_BLOCK = 4

# Explicit flag set rather than fastmath=True: 'ninf'/'nnan' would let LLVM
# drop the +inf "best so far" sentinels the argmin loops rely on.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# FASTMATH without 'reassoc': every expression is evaluated in the order
# written. With it, a loop vectorised behind a run-time overlap check (a
# loop that loads from one array and stores to another) may group its sums
# one way in the vector body and another in the scalar fallback, which runs
# when two arrays lie close in memory: the bits then change from process to
# process (the silhouette's sums did).
ORDERED = FASTMATH - {"reassoc"}

# Caching is attached by ``_disk_cache.attach`` (fastkm's own cache directory).
# No C-callable wrapper (for numba's first-class functions and cfuncs, which
# fastkm does not use): numba makes one beside the Python wrapper of every
# kernel Python calls, to compile, optimise and emit.
_OPTIONS = {"nogil": True, "fastmath": FASTMATH, "error_model": "numpy", "no_cfunc_wrapper": True}


def start_threads():
    """Start numba's threading layer (cheap once started); call before kernels.

    numba notes in each cached function whether loading it must first start
    the threads. A serial kernel that calls a parallel one, compiled in a
    process that had loaded the parallel one from the cache, is cached without
    that note, and loading it in a fresh process then fails on a missing
    symbol or crashes. Starting the threads up front makes the note moot.
    """
    if not getattr(numba.np.ufunc.parallel, "_is_initialized", False):
        numba.get_num_threads()


# Below this many multiply-adds a pass over the data, a solver runs its
# kernels on the calling thread alone: waking a sleeping thread costs more
# than it saves (tens of microseconds on bare metal; milliseconds in a virtual
# machine whose idle CPU must be woken: 7 ms for each call of a pause-separated
# fit of the seeds' blobs here). Results do not depend on the thread count.
SERIAL_WORK = 1 << 16


def _set_num_threads(n):
    """``numba.set_num_threads(n)`` for a valid ``n`` once the threads are started.

    The threading layer's own setter, which numba's calls after taking its
    launch lock and checking ``n`` (1 us of a small fit's 90 us, twice a fit),
    where numba has it; numba's otherwise.
    """
    setter = getattr(numba.np.ufunc.parallel, "_set_num_threads", None)
    if not callable(setter):
        setter = numba.set_num_threads
    setter(n)


def _num_threads():
    """``numba.get_num_threads()``; once the threads are started, without its launch lock (0.5 us)."""
    parallel = numba.np.ufunc.parallel
    getter = getattr(parallel, "_get_num_threads", None)
    if getattr(parallel, "_is_initialized", False) and callable(getter):
        threads = getter()
        if threads > 0:
            return threads
    return numba.get_num_threads()


@contextlib.contextmanager
def one_thread(when=True):
    """Kernels run in the block take the calling thread alone (if ``when``); the count is restored after."""
    start_threads()
    threads = _num_threads() if when else 1
    if threads == 1:
        yield
        return
    _set_num_threads(1)
    try:
        yield
    finally:
        _set_num_threads(threads)


def serial_when_small(work):
    """Decorate a solver: one thread when ``work(*args, **kwargs)``, its multiply-adds a pass, is small."""

    def decorate(solver):
        @functools.wraps(solver)
        def run(*args, **kwargs):
            # one_thread written out: its generator cost a small fit 1 us.
            start_threads()  # as one_thread's count did, whatever the work
            threads = _num_threads() if work(*args, **kwargs) < SERIAL_WORK else 1
            if threads == 1:
                return solver(*args, **kwargs)
            _set_num_threads(1)
            try:
                return solver(*args, **kwargs)
            finally:
                _set_num_threads(threads)

        return run

    return decorate


class LazyKernel:
    """A kernel whose numba dispatcher is made the first time it is used.

    A dispatcher (with its cache) costs about 0.1 ms to make, and fastkm
    declares over a hundred kernels, of which a fit loads a handful from the
    cache: made at import, they were 10 ms of a warm first fit. Anything
    asked of this object (a call, an attribute, numba typing it as a callee
    through ``_numba_type_``) is asked of the dispatcher, made then. The
    dispatcher then takes the kernel's place in its module, so that calls
    from Python (``lloyd.assign_labels(...)``) go to it without this
    object's 0.2 us in between.
    """

    def __init__(self, fn, make):
        functools.update_wrapper(self, fn)
        self._make = make
        self._dispatcher = None

    @property
    def dispatcher(self):
        """The numba dispatcher (a ``_linking.Kernel``), made on first use."""
        dispatcher = self._dispatcher
        if dispatcher is None:
            # numba's lock: typing a caller (which holds it) makes callees.
            with global_compiler_lock:
                if self._dispatcher is None:
                    try:
                        self._dispatcher = self._make()
                    except AttributeError as error:  # not to be taken for a missing property
                        raise RuntimeError(f"could not make the dispatcher of {self!r}") from error
                    module = sys.modules.get(self.__module__)
                    if getattr(module, self.__name__, None) is self:
                        setattr(module, self.__name__, self._dispatcher)
                dispatcher = self._dispatcher
        return dispatcher

    @property
    def _numba_type_(self):
        return self.dispatcher._numba_type_

    def __call__(self, *args, **kwargs):
        return self.dispatcher(*args, **kwargs)

    def __getattr__(self, name):
        # Not for this object's own names (a property that raised comes here).
        if name.startswith("__") or name in ("_make", "_dispatcher", "dispatcher", "_numba_type_"):
            raise AttributeError(name)
        return getattr(self.dispatcher, name)

    def __reduce__(self):
        # Pickled by name, as a function (or numba's dispatcher) is.
        named = getattr(sys.modules.get(self.__module__), self.__name__, None)
        if named is not self and named is not self._dispatcher:
            raise pickle.PicklingError(f"{self!r} is not {self.__module__}.{self.__name__}")
        return _kernel_named, (self.__module__, self.__name__)

    def __repr__(self):
        return f"<fastkm kernel {self.__module__}.{self.__qualname__}>"


def _kernel_named(module, name):
    """The kernel ``name`` of ``module`` (its dispatcher, once made)."""
    import importlib

    return getattr(importlib.import_module(module), name)


def kernel(fn):
    """Compile ``fn`` as a serial kernel (for helpers and inner routines)."""
    return LazyKernel(fn, lambda: attach(Kernel(fn, _OPTIONS)))


def exact_kernel(fn):
    """Compile ``fn`` without fastmath: every operation rounds as written.

    For the few kernels that must reproduce numpy's results bit for bit.
    ``fastmath=False`` is stated: left unset, numba gives the function the
    flags of the kernel that first compiles it as a callee.
    """
    return LazyKernel(fn, lambda: attach(Kernel(fn, {**_OPTIONS, "fastmath": False})))


def kernel_for_types(choose, fastmath=FASTMATH):
    """A serial kernel whose code depends on its arguments' types (kernels only).

    ``choose`` takes the argument types and returns the function to compile
    for them (dense arrays and CSR tuples, say). ``fastmath=False`` for code
    whose every operation must round as written.
    """
    return LazyKernel(choose, lambda: KernelForTypes(choose, {**_OPTIONS, "fastmath": fastmath}))


def parallel_kernel(fn):
    """Compile ``fn`` as a parallel kernel; its ``prange`` loops run on threads."""
    return LazyKernel(fn, lambda: attach(Kernel(fn, {"parallel": True, **_OPTIONS})))


def ordered_kernel(fn):
    """A serial kernel compiled with ``ORDERED``: its results never depend on where arrays lie."""
    return LazyKernel(fn, lambda: attach(Kernel(fn, {**_OPTIONS, "fastmath": ORDERED})))


def exact_parallel_kernel(fn):
    """``parallel_kernel`` without fastmath: every operation rounds as written (``exact_kernel``)."""
    options = {"parallel": True, **_OPTIONS, "fastmath": False}
    return LazyKernel(fn, lambda: attach(Kernel(fn, options)))


def ordered_parallel_kernel(fn):
    """``parallel_kernel`` compiled with ``ORDERED``."""
    options = {"parallel": True, **_OPTIONS, "fastmath": ORDERED}
    return LazyKernel(fn, lambda: attach(Kernel(fn, options)))


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` with a single rounding (LLVM's fma), all one float type.

    Used where the rounding order matters: the dot products are accumulated as
    a sequential FMA chain over features, like a BLAS GEMM micro-kernel, so
    exact ties between centres break the same way as in scikit-learn.
    """
    if isinstance(a, types.Float) and a == b == c:

        def codegen(context, builder, signature, args):
            return builder.fma(*args)

        return a(a, b, c), codegen
    return None


def emit_prefetch(builder, pointer, locality):
    """IR: LLVM's prefetch of ``pointer``'s cache line for a read (no effect on results).

    ``locality`` 3 keeps the line in L1, 2 in L2 (x86's prefetcht0 / prefetcht1).
    """
    byte_pointer = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fn_type = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fn_type, "llvm.prefetch.p0i8")
    # A read (0), the locality, the data cache (1).
    builder.call(fn, [builder.bitcast(pointer, byte_pointer), i32(0), i32(locality), i32(1)])


@intrinsic
def prefetch(typingctx, array, row, column):
    """Hint the CPU to fetch the cache line of ``array[row, column]`` (no effect on results).

    For gathers whose addresses are known a few iterations ahead (the CSR
    kernels' reads of the centres, one row per stored value).
    """
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None
    if not (isinstance(row, types.Integer) and isinstance(column, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        indices = [
            context.cast(builder, value, value_type, types.intp)
            for value, value_type in zip(args[1:], signature.args[1:], strict=True)
        ]
        ptr = cgutils.get_item_pointer(context, builder, array_type, ary, indices, wraparound=False)
        emit_prefetch(builder, ptr, locality=3)  # into L1
        return context.get_dummy_value()

    return types.void(array, row, column), codegen
