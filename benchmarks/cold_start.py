"""Cold start: a fresh Python process that imports the library and fits digits.

Measures, for scikit-learn and for fastkm, the wall time of a new interpreter
running ``import`` + ``KMeans(10, random_state=0).fit(digits)``; for fastkm both
with an empty Numba cache (everything compiles) and with a warm one. Each
figure is the median of several processes. The digits data is loaded before
the clock starts.

    python benchmarks/cold_start.py [--repeats 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

_TEMPLATE = """
import time
from sklearn.datasets import load_digits
X = load_digits().data
t0 = time.perf_counter()
{import_line}
KMeans(10, random_state=0).fit(X)
print(time.perf_counter() - t0)
"""

IMPORTS = {
    "sklearn": "from sklearn.cluster import KMeans",
    "fastkm": "from fastkm import KMeans",
}


def run(library, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    code = _TEMPLATE.format(import_line=IMPORTS[library])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    empty = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as fresh:
            empty.append(run("fastkm", fresh))
    with tempfile.TemporaryDirectory() as cache:
        run("fastkm", cache)  # fill the cache
        warm = [run("fastkm", cache) for _ in range(args.repeats)]
        sk = [run("sklearn", cache) for _ in range(args.repeats)]

    t_sk, t_warm, t_empty = (statistics.median(v) for v in (sk, warm, empty))
    print("import + first fit of digits (k=10) in a fresh process, medians:")
    print(f"  scikit-learn                 {t_sk:7.3f} s")
    print(f"  fastkm, warm Numba cache     {t_warm:7.3f} s   (+{t_warm - t_sk:.3f} s)")
    print(f"  fastkm, empty Numba cache    {t_empty:7.3f} s   (+{t_empty - t_sk:.3f} s)")


if __name__ == "__main__":
    main()
