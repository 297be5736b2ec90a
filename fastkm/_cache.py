"""Where fastkm's compiled kernels are kept, and which groups of them are ready.

Pure Python (no numba import), so that ``import fastkm``, ``fastkm compile
--clear`` and the check "are this call's kernels compiled?" cost nothing.

The cache lives outside the installed package, so that an upgrade or
``pip uninstall`` cannot leave it in the way, in the first of:

1. ``$NUMBA_CACHE_DIR/fastkm-<version>`` when ``NUMBA_CACHE_DIR`` is set
   (numba's own setting wins);
2. ``$FASTKM_CACHE_DIR`` as given;
3. the user's cache folder: ``$XDG_CACHE_HOME/fastkm/<version>`` (default
   ``~/.cache/fastkm/<version>``; ``%LOCALAPPDATA%`` on Windows).

A directory that exists but cannot be written (a prebuilt cache in a
container image, a shared install) is still read. Kernels are keyed by a
digest of the kernel sources, numba's version and the CPU, so a stale entry
is never loaded.

A *group* is the set of kernels one kind of public call needs, and a *unit*
a group's kernels for one dtype, ``"kmeans:float64"`` (see ``_workloads``).
Compiling a unit ends by writing its *ready stamp*; a call whose unit is
stamped runs compiled, one whose unit is not is answered by scikit-learn
while the unit compiles in the background (``_tiers``).
"""

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

VERSION = "0.1.0"

_KERNELS = Path(__file__).resolve().parent / "_kernels"


def cache_root():
    """The directory fastkm's kernel cache lives in (it may not exist yet)."""
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return Path(numba_dir).expanduser() / f"fastkm-{VERSION}"
    own = os.environ.get("FASTKM_CACHE_DIR")
    if own:
        return Path(own).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fastkm" / VERSION


def readable(root=None):
    """True when ``root`` exists and its files can be read."""
    root = cache_root() if root is None else root
    return root.is_dir() and os.access(root, os.R_OK | os.X_OK)


def writable(root=None):
    """True when ``root`` can be created and written (a file is actually tried)."""
    root = cache_root() if root is None else root
    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()
    except OSError:
        return False
    return True


@functools.cache
def source_digest():
    """Digest of every kernel source file: a cached kernel is valid for these sources only.

    numba's own stamp (a file's modification time and size) misses edits to a
    helper in another module that a cached caller compiled in, and changes
    when an install rewrites an unchanged file; a content digest does neither.
    """
    return _digest(_KERNELS.glob("*.py"))


@functools.cache
def package_digest():
    """Digest of the package's Python sources, kernels and the code that calls them.

    A ready stamp stands for the signatures the calls compile, which the
    solvers and the estimators choose too (an argument passed as a float
    rather than an int is another signature): editing them makes the stamps
    stale, not the compiled kernels.
    """
    return _digest([*_KERNELS.parent.glob("*.py"), *_KERNELS.glob("*.py")])


def _digest(paths):
    """Digest of fastkm's version and the files at ``paths`` (names and contents)."""
    digest = hashlib.sha256(VERSION.encode())
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


@functools.cache
def _cpu():
    """A description of this CPU model and its instruction sets (compiled code is specific to it)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine() + " " + platform.processor()
    wanted = ("model name", "flags", "Features", "CPU part")
    fields = sorted({line for line in lines if line.split(":")[0].strip() in wanted})
    return platform.machine() + "\n" + "\n".join(fields)


def _version_of(package):
    """An installed package's version, from the name of its ``.dist-info`` folder.

    Found beside the package without importing it; ``importlib.metadata``
    (which parses the metadata, with the email package: 25 ms of a warm
    start's imports) only where no such folder is (a source checkout, say).
    """
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.origin is not None:
        # "numba-0.68.1.dist-info", not another distribution's "numba-x-1.0.dist-info".
        name = re.compile(rf"{re.escape(package)}-([^-]+)\.dist-info")
        found = [m for p in Path(spec.origin).parent.parent.iterdir() if (m := name.fullmatch(p.name))]
        if len(found) == 1:
            return found[0].group(1)
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


@functools.cache
def stamp_key():
    """What a ready stamp must match: the package's sources, numba, llvmlite, numpy, Python and the CPU."""
    versions = [f"{package}={_version_of(package)}" for package in ("numba", "llvmlite", "numpy")]
    python = ".".join(map(str, sys.version_info[:2]))
    cpu = hashlib.sha256(_cpu().encode()).hexdigest()[:16]
    return {"sources": package_digest(), "versions": versions, "python": python, "cpu": cpu}


def _stamp_path(name, root=None):
    root = cache_root() if root is None else root
    return root / "ready" / f"{name.replace(':', '-')}.json"


def is_ready(unit, root=None):
    """True when ``unit``'s kernels were compiled into the cache for this machine and these sources."""
    try:
        stamp = json.loads(_stamp_path(unit, root).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("key") == stamp_key()


def write_file(path, data):
    """Write ``data`` (bytes) to ``path`` whole or not at all: another process reads the old file or the new.

    The directories are made as needed; the file gets a new file's mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def mark_ready(unit, seconds, root=None):
    """Write ``unit``'s ready stamp (after its kernels are in the cache)."""
    stamp = {"key": stamp_key(), "seconds": round(seconds, 2)}
    write_file(_stamp_path(unit, root), json.dumps(stamp).encode())


def mark_failed(unit, message, root=None):
    """Record that compiling ``unit`` failed (calls then compile in process instead)."""
    stamp = {"key": stamp_key(), "error": message}
    write_file(_stamp_path(unit, root).with_suffix(".failed"), json.dumps(stamp).encode())


def has_failed(unit, root=None):
    """True when a background compile of ``unit`` failed for these sources on this machine."""
    try:
        stamp = json.loads(_stamp_path(unit, root).with_suffix(".failed").read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("key") == stamp_key()


def worker_pids(root=None):
    """Process ids of the background compiles running for ``root`` (each records itself)."""
    root = cache_root() if root is None else root
    try:
        names = os.listdir(root / "workers")
    except OSError:
        return []
    return [int(name) for name in names if name.isdigit()]


@contextlib.contextmanager
def locked(name, root=None, blocking=True):
    """Hold the advisory lock file ``<root>/<name>.lock`` (one holder across processes).

    Yields True while held; False when ``blocking`` is False and another
    process holds it, or when there is no lock to take (no ``fcntl``, or the
    directory cannot be written: then nothing can be written to race over).
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; saves are still atomic renames.
        yield False
        return
    root = cache_root() if root is None else root
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(root / f"{name}.lock", "a")
    except OSError:
        yield False
        return
    with handle:
        flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(handle, flags)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clear(root=None):
    """Remove the kernel cache directory; returns the path removed, or None when there was none."""
    root = cache_root() if root is None else root
    if not root.exists():
        return None
    shutil.rmtree(root)
    return root
