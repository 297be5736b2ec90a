"""What each public path compiles on its first call, and what each kernel costs to compile.

Every path runs in a new process with an empty kernel cache and
``FASTKM_COMPILE=wait`` (so the call compiles rather than being answered by
scikit-learn). numba's ``numba:compile`` events give each dispatcher and
signature its compile time; nested compiles (a callee typed while its caller
compiles) are subtracted from the caller, so the times add up to the total.

    python benchmarks/compile_surface.py                       # the table
    python benchmarks/compile_surface.py --markdown surface.md --json surface.json
    python benchmarks/compile_surface.py --paths kmeans-digits,predict --top 10

The README's compile-surface table is this script's ``--markdown`` output.
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

PATHS = {
    "kmeans-digits": "KMeans(10, random_state=0).fit(digits())",
    "kmeans-digits-f32": "KMeans(10, random_state=0).fit(digits(np.float32))",
    "kmeans-blobs": "KMeans(4, random_state=0).fit(blobs())",
    "elkan-digits": "KMeans(10, random_state=0, algorithm='elkan').fit(digits())",
    "hamerly-digits": "KMeans(40, random_state=0, algorithm='hamerly').fit(digits())",
    "yinyang-digits": "KMeans(128, random_state=0, algorithm='yinyang', max_iter=20).fit(digits())",
    "minibatch-china": "MiniBatchKMeans(16, random_state=0).fit(china())",
    "predict": "fitted(digits()).predict(digits())",
    "sparse-kmeans": "KMeans(8, random_state=0).fit(sparse())",
    "sparse-minibatch": "MiniBatchKMeans(8, random_state=0).fit(sparse())",
    "quantize-china": "quantize(load_sample_image('china.jpg'), 16, random_state=0)",
}

_CHILD = """
import json, sys, time
import numpy as np
import numba.core.event as event
import scipy.sparse as sp
from sklearn.datasets import load_sample_image
from fastkm import KMeans, MiniBatchKMeans, quantize
from fastkm.datasets import blobs, china, digits

def sparse():
    return sp.random(2000, 300, density=0.02, format="csr", random_state=0)

def fitted(X):
    model = KMeans(10)
    model.cluster_centers_ = X[:10].copy()
    model.n_features_in_, model._n_features_out = X.shape[1], 10
    return model

records, stack = [], []

class Compiles(event.Listener):
    def on_start(self, ev):
        stack.append([time.perf_counter(), 0.0])
    def on_end(self, ev):
        start, children = stack.pop()
        total = time.perf_counter() - start
        if stack:
            stack[-1][1] += total
        dispatcher = ev.data["dispatcher"]
        func = dispatcher.py_func
        name = func.__module__.replace("fastkm._kernels.", "") + "." + func.__qualname__
        signature = str(tuple(ev.data["args"]))
        records.append({"kernel": name, "signature": signature, "seconds": total - children})

event.register("numba:compile", Compiles())
start = time.perf_counter()
CALL
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "records": records}))
"""


def measure(path):
    """Run ``path``'s call in a new process with an empty cache; its compile records."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTKM_COMPILE="wait")
        code = _CHILD.replace("CALL", PATHS[path])
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(result, top):
    """Per kernel: signatures and seconds, biggest first; and the totals."""
    kernels = {}
    for record in result["records"]:
        entry = kernels.setdefault(record["kernel"], {"signatures": 0, "seconds": 0.0})
        entry["signatures"] += 1
        entry["seconds"] += record["seconds"]
    ranked = sorted(kernels.items(), key=lambda item: -item[1]["seconds"])
    compile_seconds = sum(record["seconds"] for record in result["records"])
    return {
        "wall": result["wall"],
        "compile": compile_seconds,
        "kernels": len(kernels),
        "signatures": len(result["records"]),
        "top": ranked[:top],
    }


def markdown(summaries):
    lines = [
        "| first call (empty cache) | wall | compiling | kernels | signatures "
        "| most costly (signatures: seconds) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for path, s in summaries.items():
        top = ", ".join(f"`{name}` ({e['signatures']}: {e['seconds']:.1f})" for name, e in s["top"])
        lines.append(
            f"| `{PATHS[path]}` | {s['wall']:.1f} s | {s['compile']:.1f} s | {s['kernels']} | "
            f"{s['signatures']} | {top} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", help=f"comma-separated, of: {', '.join(PATHS)}")
    parser.add_argument("--top", type=int, default=4, help="kernels listed per path (default 4)")
    parser.add_argument("--processes", type=int, default=2, help="paths measured at once (default 2)")
    parser.add_argument("--markdown", metavar="PATH")
    parser.add_argument("--json", metavar="PATH", help="every record: path, kernel, signature, seconds")
    args = parser.parse_args(argv)
    paths = args.paths.split(",") if args.paths else list(PATHS)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.processes) as pool:
        results = dict(zip(paths, pool.map(measure, paths), strict=True))
    summaries = {path: summarise(result, args.top) for path, result in results.items()}
    table = markdown(summaries)
    print(table)
    print(f"\n({time.perf_counter() - start:.0f} s, {args.processes} paths at once)")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
