"""How fastkm's kernels are compiled: machine code only for the kernels Python calls.

numba turns every compiled function into machine code of its own, and links
the code of its callees into each caller, which it optimises and turns into
machine code again. A helper under a parallel kernel was so optimised and
emitted once on its own and once more per level above it (the helpers
between, the parallel kernel, numba's three wrappers of its loop, the serial
kernel calling it): the code under Lloyd's float32-first loop six times over,
and a first dense ``KMeans.fit`` took 37 s to compile.

Two changes, for fastkm's kernels only:

- A kernel typed as the callee of another is compiled to LLVM IR alone
  (``Kernel``): no machine code of its own, nothing to call it from Python,
  linked into its caller. Its argument types are taken without literal
  values, so that a constant argument (``new_tile(0, ...)``) does not compile
  a second specialisation.
- numba's implementations of numpy and builtins (``np.empty``, ``max``:
  numba's ``@overload`` functions) met while a fastkm kernel compiles are
  compiled the same way (``_LinkedImplementation``): numba makes machine code
  for each, one per argument types, though only their IR is ever linked (a
  first ``KMeans.fit`` met 35 versions of ``np.empty``).
- Every code library made while a fastkm kernel compiles (its own, the
  libraries of its loops' wrappers, those of numba's helpers) is finalised by
  linking alone (``LinkedLibrary``). It is optimised and turned into machine
  code only when something runs it (a kernel called from Python, a numba
  helper, the disk cache saving it), from the IR of all its callees at once.

A kernel called from Python compiles as before, one optimisation and one
machine code for it and everything it calls. Callees are always linked as
IR compiled for callers, never as a version compiled for a Python call, so
a kernel's code does not depend on the order in which things were compiled.
"""

import contextlib
import gc

from numba.core import codegen, compiler, sigutils, types, typing
from numba.core import event as ev
from numba.core.compiler_lock import global_compiler_lock, require_global_compiler_lock
from numba.core.registry import CPUDispatcher
from numba.core.typing import templates

# The disk cache's form of a kernel's library: machine code and the symbols it defines.
_MACHINE_CODE = "fastkm-machine-code"


class LinkedLibrary(codegen.JITCodeLibrary):
    """A code library finalised by linking alone; optimised and emitted when run."""

    _pending = False

    def finalize(self):
        require_global_compiler_lock()
        self._raise_if_finalized()
        seen = set()
        for library in self._linking_libraries:
            if library not in seen:
                seen.add(library)
                self._reload_init.update(library._reload_init)
                self._final_module.link_in(library._get_module_for_linking(), preserve=True)
        self._finalize_dynamic_globals()
        self._finalized = True
        self._pending = True

    def _materialize(self):
        """Optimise the linked module and turn it into machine code (once)."""
        self._ensure_finalized()
        if not self._pending:
            return
        with global_compiler_lock:
            if self._pending:
                self._dynamic_globals = []  # scanned again below
                self._optimize_final_module()
                self._final_module.verify()
                self._finalize_final_module()
                # Only now: an interrupted attempt leaves it to be made again.
                self._pending = False

    def get_pointer_to_function(self, name):
        self._materialize()
        return super().get_pointer_to_function(name)

    def serialize_using_object_code(self):
        """The machine code and the names it defines (numba adds the bitcode, for linking).

        A kernel's callers link the IR of its callees, never a library loaded
        from the disk cache, so the bitcode numba stores beside the machine
        code would only be parsed for nothing on every load.
        """
        self._materialize()
        module = self._final_module
        defined = {value.name for value in module.functions if not value.is_declaration}
        defined |= {value.name for value in module.global_variables if not value.is_declaration}
        return (self.name, _MACHINE_CODE, (self._get_compiled_object(), tuple(sorted(defined))))

    @classmethod
    def _unserialize(cls, codegen, state):
        name, kind, data = state
        if kind != _MACHINE_CODE:
            return super()._unserialize(codegen, state)
        machine_code, defined = data
        self = codegen.create_library(name)
        self.enable_object_caching()
        self._set_compiled_object(machine_code)
        self._finalize_final_module()
        codegen._engine._defined_symbols.update(defined)
        return self

    def get_llvm_str(self):
        self._materialize()
        return super().get_llvm_str()

    def get_asm_str(self):
        self._materialize()
        return super().get_asm_str()


@contextlib.contextmanager
def libraries_of(library_class, target_context):
    """Code libraries made (or loaded) inside are ``library_class`` (the compiler lock is held)."""
    generator = target_context.codegen()
    with global_compiler_lock:
        previous = generator._library_class
        generator._library_class = library_class
        try:
            yield
        finally:
            generator._library_class = previous


def _linked_libraries(target_context):
    """Code libraries made inside are ``LinkedLibrary``."""
    return libraries_of(LinkedLibrary, target_context)


def numba_libraries(target_context):
    """numba's own kind of code library inside, even within a kernel's compile."""
    return libraries_of(type(target_context.codegen())._library_class, target_context)


@contextlib.contextmanager
def _collector_paused():
    """Python's cyclic garbage collector off inside, under the compiler lock.

    A compile makes hundreds of thousands of objects that live until it ends;
    each full collection the collector ran meanwhile walked them all, and
    everything else the process holds (a tenth of the compile time). What is
    garbage is collected after, by the collections that come. The lock keeps
    two threads' compiles from undoing each other's setting; the process's
    other threads run without collections meanwhile too (the collector is
    the process's), and one that turns it off during a compile finds it on
    again after.
    """
    with global_compiler_lock:
        enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if enabled:
                gc.enable()


class _LinkedKey:
    """Stands for a callee's IR in the target's table of user functions."""

    __slots__ = ("args", "name")

    def __init__(self, name, args):
        self.name = name
        self.args = args

    def __repr__(self):
        return f"<linked {self.name}{self.args}>"


def _as_writable(numba_type):
    """``numba_type`` with every read-only array in it (tuples included) writable."""
    if isinstance(numba_type, types.Array) and not numba_type.mutable:
        return numba_type.copy(readonly=False)
    if isinstance(numba_type, types.UniTuple):
        return types.UniTuple(_as_writable(numba_type.dtype), numba_type.count)
    if isinstance(numba_type, types.Tuple):
        return types.Tuple([_as_writable(item) for item in numba_type.types])
    return numba_type


class Kernel(CPUDispatcher):
    """A numba dispatcher whose callers link its IR (see the module docstring).

    A call from Python with read-only arrays (a memory map, an array joblib
    hands a worker process) runs the version compiled for writable ones, so
    that one compiled version serves both and ``fastkm compile`` covers
    both: kernels write only the buffers fastkm allocates (their OUT and
    INOUT arguments), never an array a user passed. Such a call is not
    registered under its own types (numba's table of argument types is
    shared by every dispatcher in the process), so it goes through
    ``compile`` each time, a few microseconds.
    """

    def __init__(self, py_func, targetoptions):
        options = {"nopython": True, **targetoptions}
        super().__init__(py_func=py_func, locals={}, targetoptions=options)
        self._linked = {}

    def compile(self, sig):
        args, return_type = sigutils.normalize_signature(sig)
        writable = tuple(_as_writable(arg) for arg in args)
        if writable != tuple(args):
            return self.compile(writable if return_type is None else return_type(*writable))
        with _linked_libraries(self.targetdescr.target_context), _collector_paused():
            return super().compile(sig)

    def _compilation_chain_init_hook(self):
        # numba runs the ``init`` of every third-party numba extension before
        # a dispatcher's first call, found by reading the entry points of
        # every installed distribution (2 ms here, more in a large
        # environment): for nothing when fastkm's kernels are loaded from the
        # cache. A compile still runs them (numba's target refresh does),
        # though after the arguments were typed: fastkm's are numpy arrays,
        # scalars and tuples of them, typed by numba itself. A user's own
        # function runs them first, as before.
        pass

    def get_call_template(self, args, kws):
        pysig, args = self._compiler.fold_argument_types(args, kws)
        args = self._callee_types(args)
        if self._can_compile:
            self._compile_linked(args)
        signatures = [compiled.signature for _, compiled in self._linked.values()]
        name = self.py_func.__name__
        template = typing.make_concrete_template(f"CallTemplate({name})", key=name, signatures=signatures)
        return template, pysig, args, {}

    def _callee_types(self, args):
        return tuple(types.unliteral(a) for a in args)

    def get_overload(self, sig):
        args, _ = sigutils.normalize_signature(sig)
        linked = self._linked.get(tuple(args))
        if linked is not None:
            return linked[0]
        return super().get_overload(sig)

    def _implementation(self, args):
        """The Python function compiled for the argument types ``args``."""
        return self.py_func

    def _compile_linked(self, args):
        """Compile for ``args`` as a callee: IR only, registered for callers to link."""
        with global_compiler_lock:
            if args in self._linked:
                return
            target = self.targetdescr.target_context
            details = {"dispatcher": self, "args": args, "return_type": None}
            with ev.trigger_event("numba:compile", data=details), _linked_libraries(target):
                flags = compiler.Flags()
                self.targetdescr.options.parse_as_flags(flags, self.targetoptions)
                flags.no_compile = True
                flags.no_cpython_wrapper = True
                flags.no_cfunc_wrapper = True
                library = LinkedLibrary(target.codegen(), self.py_func.__qualname__)
                compiled = compiler.compile_extra(
                    self.targetdescr.typing_context,
                    target,
                    self._implementation(args),
                    args=args,
                    return_type=None,
                    flags=flags,
                    locals=self.locals,
                    library=library,
                )
            key = _LinkedKey(self.py_func.__qualname__, args)
            target.insert_user_function(key, compiled.fndesc, [compiled.library])
            self._linked[args] = (key, compiled)


class _LinkedImplementation(Kernel):
    """numba's implementation of a numpy or builtin function, as a callee of fastkm's kernels.

    Typed with the argument types as given, literal values included: an
    implementation may have been chosen for them.
    """

    def _callee_types(self, args):
        return tuple(args)

    def _compile_linked(self, args):
        with global_compiler_lock:
            if args in self._linked:
                return
            super()._compile_linked(args)
            # Optimised before it is linked, as numba's own compile leaves it,
            # so that its callers' inlining sees the same small function
            # (cheap: no machine code).
            library = self._linked[args][1].library
            library._ensure_finalized()  # its own callees linked in first
            library._optimize_final_module()


def _compiling_kernel():
    """Whether a fastkm kernel is being compiled (``_linked_libraries`` is in effect)."""
    from numba.core.registry import cpu_target

    return cpu_target.target_context.codegen()._library_class is LinkedLibrary


_numba_jit_decorator = templates._OverloadFunctionTemplate._get_jit_decorator


def _get_jit_decorator(template):
    """numba's decorator for an ``@overload``'s implementation; callee-only inside a kernel's compile."""
    jitter = _numba_jit_decorator(template)

    def decorator(**options):
        decorate = jitter(**options)

        def compile_as_callee(pyfunc):
            dispatcher = decorate(pyfunc)
            if type(dispatcher) is CPUDispatcher and _compiling_kernel():
                dispatcher.__class__ = _LinkedImplementation
                dispatcher._linked = {}
            return dispatcher

        return compile_as_callee

    return decorator


templates._OverloadFunctionTemplate._get_jit_decorator = _get_jit_decorator


class KernelForTypes(Kernel):
    """A callee whose code depends on its argument types (dense or CSR rows, say).

    ``py_func`` takes the argument *types* and returns the function to
    compile for them, as a numba ``overload`` does; unlike an overload's, the
    function chosen is compiled as a callee (IR only). Kernels only: it
    cannot be called from Python.
    """

    def _implementation(self, args):
        return self.py_func(*args)

    def compile(self, sig):
        raise TypeError(f"{self.py_func.__name__} is called from compiled kernels only")
