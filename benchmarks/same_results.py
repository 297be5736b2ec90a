"""Whether two versions of fastkm give the same results, bit for bit.

Runs the same fits with each version, in fresh processes with caches of
their own, and compares every array: on the seeds' datasets (blobs, digits,
china.jpg at k=16, 64 and 256) and a sparse matrix, every algorithm, float64
and float32, KMeans's labels, centres, inertia and n_iter_, its predict,
transform and score, MiniBatchKMeans's fit and partial_fit, and weighted fits (zero
and negative weights, several random inits). Only the
public API is used, so any commit can be compared with any other; a
refactoring must leave them all equal.

    python benchmarks/same_results.py                 # HEAD against the working tree
    python benchmarks/same_results.py --base v1 --head HEAD~2
    python benchmarks/same_results.py --quick         # blobs, digits and china k=16 only

Exits 1 when anything differs, and lists what.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def results(quick=False):
    """Every array of the battery, by name (run inside the version under test)."""
    import warnings

    from fastkm import KMeans, MiniBatchKMeans, datasets

    warnings.simplefilter("ignore")  # e.g. fewer distinct clusters than k: the same in both
    china = datasets.china()
    cases = [("blobs", datasets.blobs(), 4), ("digits", datasets.digits(), 10), ("china", china, 16)]
    if not quick:
        cases += [("china", china, 64), ("china", china[::2], 256)]
    algorithms = ("lloyd", "elkan", "hamerly", "yinyang", "auto")
    out = {}
    for name, X, k in cases:
        for dtype in (np.float64, np.float32):
            data = X.astype(dtype)
            probe = data[::7]
            for algorithm in algorithms:
                key = f"{name}-k{k}-{np.dtype(dtype).name}-{algorithm}"
                model = KMeans(k, algorithm=algorithm, random_state=0).fit(data)
                out[f"{key}-labels"] = model.labels_
                out[f"{key}-centers"] = model.cluster_centers_
                out[f"{key}-inertia-n_iter"] = np.array([model.inertia_, model.n_iter_])
                out[f"{key}-predict"] = model.predict(probe)
                out[f"{key}-transform"] = model.transform(probe)
                out[f"{key}-score"] = np.array([model.score(probe)])
            key = f"{name}-k{k}-{np.dtype(dtype).name}-minibatch"
            model = MiniBatchKMeans(k, random_state=0).fit(data)
            out[f"{key}-centers"] = model.cluster_centers_
            out[f"{key}-labels"] = model.labels_
            out[f"{key}-inertia-n_iter"] = np.array([model.inertia_, model.n_iter_])
            model.partial_fit(probe)
            out[f"{key}-partial-centers"] = model.cluster_centers_
    # Weights (merged with duplicate rows), several random inits (the best-run
    # rule), negative weights (bounds fall back to Lloyd's), zero weights.
    X = datasets.digits()
    weights = np.random.default_rng(0).uniform(0.0, 2.0, len(X))
    negative = weights.copy()
    negative[::50] = -0.25
    for label, w, algorithm, init, n_init in (
        ("weighted", weights, "auto", "k-means++", 3),
        ("random-init", None, "lloyd", "random", 3),
        ("negative", negative, "hamerly", X[::180][:10], 1),  # k-means++ draws need p >= 0
        ("zero", np.where(weights < 0.5, 0.0, weights), "elkan", "k-means++", 3),
    ):
        key = f"digits-k10-{label}"
        model = KMeans(10, algorithm=algorithm, init=init, n_init=n_init, random_state=0)
        model.fit(X, sample_weight=w)
        out[f"{key}-labels"] = model.labels_
        out[f"{key}-centers"] = model.cluster_centers_
        out[f"{key}-inertia-n_iter"] = np.array([model.inertia_, model.n_iter_])
    model = KMeans(16, random_state=0).fit(china, sample_weight=np.tile([1.0, 2.0], len(china) // 2))
    out["china-k16-weighted-centers"] = model.cluster_centers_
    out["china-k16-weighted-labels"] = model.labels_
    S = datasets.sparse_random(20_000, 2_000, 0.01)
    for dtype in (np.float64, np.float32):
        data = S.astype(dtype)
        for algorithm in ("lloyd", "elkan"):
            key = f"sparse-k32-{np.dtype(dtype).name}-{algorithm}"
            model = KMeans(32, algorithm=algorithm, random_state=0).fit(data)
            out[f"{key}-labels"] = model.labels_
            out[f"{key}-centers"] = model.cluster_centers_
            out[f"{key}-inertia-n_iter"] = np.array([model.inertia_, model.n_iter_])
            out[f"{key}-transform"] = model.transform(data[:500])
        model = MiniBatchKMeans(32, random_state=0).fit(data)
        out[f"sparse-k32-{np.dtype(dtype).name}-minibatch-centers"] = model.cluster_centers_
        out[f"sparse-k32-{np.dtype(dtype).name}-minibatch-labels"] = model.labels_
    return out


def _tree(rev, scratch):
    """A source tree of ``rev`` (a git worktree in ``scratch``), or the working tree for None."""
    if rev is None:
        return REPO
    path = Path(scratch) / f"tree-{len(os.listdir(scratch))}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), rev], check=True)
    return path


def _run(tree, scratch, out, quick):
    """The battery in a new process importing fastkm from ``tree``, its kernels compiled into a new cache."""
    cache = Path(tempfile.mkdtemp(dir=scratch, prefix="cache-"))
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache), FASTKM_COMPILE="wait")
    command = [sys.executable, str(Path(__file__).resolve()), "--run", str(out)] + (
        ["--quick"] if quick else []
    )
    # Run outside the repository: the working directory would come first on sys.path.
    result = subprocess.run(command, env=env, cwd=scratch, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the battery failed with fastkm from {tree}:\n{result.stderr[-3000:]}")
    first = result.stdout.strip().splitlines()[0]
    if Path(first).resolve() != (Path(tree) / "fastkm" / "__init__.py").resolve():
        raise SystemExit(f"the battery imported {first}, not fastkm from {tree}")


def _same(a, b):
    # Bit for bit: dtype and shape too, -0.0 is not 0.0, a NaN equals itself.
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def differences(base, head):
    """Names of the arrays that differ (or that only one side has)."""
    names = sorted(set(base) | set(head))
    return [n for n in names if n not in base or n not in head or not _same(base[n], head[n])]


def _same_sources(base, head):
    """True when the two versions' fastkm sources are the same (nothing to compare)."""
    git = ["git", "-C", str(REPO)]
    if head is None:
        return subprocess.run([*git, "diff", "--quiet", base, "--", "fastkm"], check=False).returncode == 0
    trees = [
        subprocess.run(
            [*git, "rev-parse", f"{rev}:fastkm"], capture_output=True, text=True, check=True
        ).stdout
        for rev in (base, head)
    ]
    return trees[0] == trees[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="the version compared against (a git revision)")
    parser.add_argument("--head", default=None, help="the version checked (default: the working tree)")
    parser.add_argument("--quick", action="store_true", help="blobs, digits and china k=16 only")
    parser.add_argument("--run", metavar="OUT", help=argparse.SUPPRESS)  # inside the version under test
    args = parser.parse_args(argv)
    if args.run:
        import fastkm

        print(fastkm.__file__, flush=True)
        np.savez(args.run, **results(args.quick))
        return 0
    if _same_sources(args.base, args.head):
        print(f"note: fastkm's sources are the same in {args.base} and {args.head or 'the working tree'}")
    with tempfile.TemporaryDirectory() as scratch:
        trees = []
        try:
            started = time.perf_counter()
            for rev, side in ((args.base, "base"), (args.head, "head")):
                tree = _tree(rev, scratch)
                if tree != REPO:
                    trees.append(tree)
                _run(tree, scratch, Path(scratch) / f"{side}.npz", args.quick)
            arrays = []
            for side in ("base", "head"):
                with np.load(Path(scratch) / f"{side}.npz") as saved:
                    arrays.append(dict(saved))
            base, head = arrays
            differ = differences(base, head)
        finally:
            for tree in trees:
                remove = ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)]
                if subprocess.run(remove, check=False).returncode != 0:
                    print(f"warning: could not remove the worktree {tree}", file=sys.stderr)
            subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], check=False)
    head_name = args.head or "the working tree"
    print(f"{len(base)} arrays, {args.base} against {head_name} ({time.perf_counter() - started:.0f} s):")
    if differ:
        print(f"{len(differ)} differ: " + ", ".join(differ))
        return 1
    print("all identical, bit for bit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
