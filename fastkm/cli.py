"""The ``fastkm`` command (also ``python -m fastkm``).

``fastkm bench`` times fastkm beside scikit-learn (and scikit-learn-intelex and
faiss-cpu when installed) on the seeds' datasets and prints a table.
``fastkm quantize`` reduces an image to N colours, or to a series of them.
``fastkm compile`` compiles every kernel into the cache ahead of use.
"""

import argparse
import importlib.util
import os
import sys

from . import _files


def _split(values):
    """``--cases a,b --cases c`` -> ``['a', 'b', 'c']``; None when not given."""
    if not values:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def build_parser():
    parser = argparse.ArgumentParser(prog="fastkm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench = commands.add_parser(
        "bench",
        help="time fastkm beside scikit-learn on the seeds' datasets",
        description="Time fastkm beside scikit-learn (and installed peers) in one process: "
        "medians after a warm-up call, speed-ups and inertia ratios.",
    )
    bench.add_argument(
        "--quick", action="store_true", help="fewer repeats, and leave out the heavy cases (about a minute)"
    )
    bench.add_argument(
        "--cases",
        action="append",
        metavar="PATTERNS",
        help="comma-separated case names, globs or prefixes (e.g. 'china-k64-fit', '*-predict', 'digits'); "
        "'dask' is the Dask cluster's case, run only when named (needs 'fastkm[dask]')",
    )
    bench.add_argument(
        "--libraries",
        action="append",
        metavar="NAMES",
        help="comma-separated libraries to compare (default: sklearn, fastkm and installed peers)",
    )
    bench.add_argument("--list", action="store_true", help="list the cases and exit")
    bench.add_argument("--json", metavar="PATH", help="write every measurement as JSON")
    bench.add_argument("--markdown", metavar="PATH", help="write the table as markdown, with the machine")
    bench.add_argument("--plot", metavar="PNG", help="draw the speed-ups as bars (needs matplotlib)")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.set_defaults(handler=_bench, parser=bench)

    quantize = commands.add_parser(
        "quantize",
        help="reduce an image to N colours with k-means",
        description="Reduce an image to N colours with k-means. A PNG of at most 256 colours "
        "is written as a palette image; alpha is kept.",
    )
    quantize.add_argument("input", metavar="IN", help="the image to read")
    quantize.add_argument("-n", "--colors", type=int, metavar="N", help="number of colours")
    quantize.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        required=True,
        help="the image to write; with --sweep, a directory for the series",
    )
    quantize.add_argument("--method", choices=["minibatch", "kmeans"], default="minibatch")
    quantize.add_argument("--seed", type=int, default=None, help="random seed (default: none)")
    quantize.add_argument("--sample", type=int, metavar="M", help="fit on M random pixels, then label all")
    quantize.add_argument(
        "--sweep",
        metavar="LO..HI",
        help="every power of two from LO to HI colours: one image each, and a table of "
        "time, PSNR and file size",
    )
    quantize.add_argument(
        "--labels",
        metavar="MASK",
        help="also write each pixel's cluster as an 8-bit label image (PNG or TIFF), "
        "clusters ordered by brightness, 0 the darkest: with -n 2, a segmentation mask",
    )
    quantize.add_argument("--no-progress", action="store_true", help="no progress bar (--sweep)")
    quantize.set_defaults(handler=_quantize, parser=quantize)

    sweep = commands.add_parser(
        "sweep",
        help="fit k-means for a range of k: inertia, silhouette, the elbow",
        description="Fit k-means for every k of a range and score each fit: inertia, silhouette, "
        "Calinski-Harabasz, Davies-Bouldin and fit time; the elbow (Kneedle) and the best silhouette.",
    )
    sweep.add_argument("data", metavar="DATA", help="a .npy array, a .csv table or an image (its pixels)")
    sweep.add_argument("--k", default="2..10", metavar="LO..HI", help="the range of k (default: 2..10)")
    sweep.add_argument("--method", choices=["kmeans", "minibatch"], default="kmeans")
    sweep.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    sweep.add_argument(
        "--silhouette-sample",
        type=int,
        default=20_000,
        metavar="M",
        help="exact silhouettes up to M samples, on M random ones past it (default: 20000)",
    )
    sweep.add_argument("--plot", metavar="PNG", help="draw the curves (needs matplotlib)")
    sweep.add_argument("--json", metavar="PATH", help="write the table as JSON")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=_sweep, parser=sweep)

    compile_ = commands.add_parser(
        "compile",
        help="compile every kernel into the cache, ahead of use",
        description="Compile every fastkm kernel (float32 and float64) into fastkm's cache directory, "
        "so that no call waits for the compiler: for a Dockerfile's RUN line, a CI image, a new "
        "machine. Groups already compiled are skipped.",
    )
    compile_.add_argument("--clear", action="store_true", help="remove the cache directory instead")
    compile_.add_argument("--only", action="append", metavar="GROUPS", help=argparse.SUPPRESS)
    compile_.add_argument(
        "--processes", type=int, metavar="N", help="processes to use (default: one per CPU, at most 4)"
    )
    compile_.add_argument("--no-progress", action="store_true", help="no progress output")
    # What fastkm starts itself: a lane of a parallel compile, a first call's background compile.
    compile_.add_argument("--lane", action="store_true", help=argparse.SUPPRESS)
    compile_.add_argument("--background", action="store_true", help=argparse.SUPPRESS)
    compile_.set_defaults(handler=_compile, parser=compile_)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args.parser, args)


def _bench(parser, args):
    # The benchmark times the compiled kernels: a first call compiles rather
    # than being answered by scikit-learn (the cold-start cases set their own).
    os.environ["FASTKM_COMPILE"] = "wait"
    from . import bench

    try:
        cases = bench.select_cases(_split(args.cases), quick=args.quick)
    except bench.UnknownCaseError as error:
        parser.error(str(error))
    if args.list:
        for case in cases:
            print(f"{case.name:<24} {case.description}{'  [heavy]' if case.heavy else ''}")
        return 0
    for path in (args.json, args.markdown, args.plot):
        if path:
            _check_writable(parser, path)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install 'fastkm[bench]'")
    try:
        libraries, missing = bench.resolve_libraries(_split(args.libraries))
    except ValueError as error:
        parser.error(str(error))

    names = ", ".join(f"{lib.name} {lib.version()}" for lib in libraries)
    print(f"fastkm bench: {len(cases)} cases; {names}", flush=True)
    if missing:
        hints = ", ".join(f"{lib.name} (pip install {lib.distribution})" for lib in missing)
        print(f"not installed, so left out: {hints}", flush=True)
    if any(case.on_cluster for case in cases) and bench.cluster.missing():
        print(f"the Dask case is left out: {bench.cluster.missing()}", flush=True)
    steps = sum(1 if case.on_cluster else len(libraries) for case in cases)
    progress = bench.progress.ProgressBar(steps, enabled=False if args.no_progress else None)
    budget = bench.QUICK if args.quick else bench.FULL
    report = bench.run(cases, libraries, budget=budget, quick=args.quick, progress=progress)

    print()
    print(bench.format_table(report))
    print()
    print(f"on {bench.report.describe_machine(report)}")
    command = " ".join(["fastkm bench", *_command_options(args)])
    try:
        if args.json:
            bench.write_json(report, args.json)
        if args.markdown:
            bench.write_markdown(report, args.markdown, command=command)
        if args.plot:
            bench.plot_speedups(report, args.plot)
    except _files.OutputError as error:
        _fail(parser, str(error))
    return 0


def _compile(parser, args):
    from . import _cache, _compile, _workloads

    groups = _split(args.only)
    if args.lane or args.background:
        # Units, "kmeans:float64": what fastkm starts itself.
        unknown = sorted(set(groups) - set(_workloads.UNITS))
        if unknown:
            parser.error(f"unknown unit {unknown[0]!r}; choose from {', '.join(_workloads.UNITS)}")
        return (_compile.run_lane if args.lane else _compile.run_background)(groups)
    if groups is not None:
        unknown = sorted(set(groups) - set(_workloads.GROUPS))
        if unknown:
            parser.error(f"unknown kernel group {unknown[0]!r}; choose from {', '.join(_workloads.GROUPS)}")
    root = _cache.cache_root()
    if args.clear:
        removed = _cache.clear(root)
        print(f"fastkm compile: removed {removed}" if removed else f"fastkm compile: no cache at {root}")
        return 0
    if args.processes is not None and args.processes < 1:
        parser.error("--processes must be at least 1")
    print(f"fastkm compile: kernels for float32 and float64, into {root}", flush=True)
    report = _compile.compile(groups, processes=args.processes, progress=not args.no_progress)
    if not report.compiled:
        print(f"already compiled: {', '.join(report.already)}; nothing to do")
        return 0
    done = ", ".join(f"{group} {seconds:.1f} s" for group, seconds in report.compiled.items())
    print(f"compiled {done}; {report.seconds:.1f} s wall")
    if report.already:
        print(f"already compiled: {', '.join(report.already)}")
    return 0


def _fail(parser, message):
    """One line on stderr and exit status 2 (argparse's error, without the usage)."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def _quantize(parser, args):
    from PIL import Image, UnidentifiedImageError

    from .quantize import LABEL_EXTENSIONS, quantize, save, save_labels

    if (args.colors is None) == (args.sweep is None):
        _fail(parser, "give either -n N or --sweep LO..HI")
    counts = [args.colors] if args.sweep is None else _sweep_counts(parser, args.sweep)
    if min(counts) < 1:
        _fail(parser, f"N must be at least 1, got {min(counts)}")
    if args.sample is not None and args.sample < max(counts):
        _fail(parser, f"--sample {args.sample} must be at least the number of colours ({max(counts)})")
    if args.labels is not None:
        if args.sweep is not None:
            _fail(parser, "--labels takes one colour count: -n N, not --sweep")
        if os.path.splitext(args.labels)[1].lower() not in LABEL_EXTENSIONS:
            _fail(parser, f"cannot write {args.labels}: a label image is {', '.join(LABEL_EXTENSIONS)}")
        if args.colors > 256:
            _fail(parser, f"--labels holds at most 256 clusters, got -n {args.colors}")
        if os.path.abspath(args.labels) == os.path.abspath(args.output):
            _fail(parser, f"--labels {args.labels} is the output image too: give it another name")
        _check_writable(parser, args.labels)
    if args.sweep is None:
        _check_output_path(parser, args.output)
    try:
        with Image.open(args.input) as opened:
            opened.load()
            image = opened.copy()
    except FileNotFoundError:
        _fail(parser, f"cannot read {args.input}: no such file")
    except UnidentifiedImageError:
        _fail(parser, f"cannot read {args.input}: not an image file")
    except OSError as error:
        _fail(parser, f"cannot read {args.input}: {error.strerror or error}")
    options = {"method": args.method, "random_state": args.seed, "sample_size": args.sample}
    try:
        if args.sweep is None:
            result = quantize(image, args.colors, **options)
            save(result, args.output)
            if args.labels is not None:
                save_labels(result, args.labels)
            return 0
        return _quantize_sweep(image, counts, args, options)
    except _files.OutputError as error:
        _fail(parser, str(error))


def _sweep(parser, args):
    import json
    import types

    from .bench.progress import ProgressBar

    low, high = _range(parser, "--k", args.k, "2..20")
    if args.silhouette_sample < 2:
        _fail(parser, f"--silhouette-sample must be at least 2, got {args.silhouette_sample}")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        _fail(parser, "--plot needs matplotlib: pip install 'fastkm[bench]'")
    for path in (args.plot, args.json):
        if path:
            _check_writable(parser, path)
    from .sweep import read_samples, sweep_n_clusters

    try:
        X = read_samples(args.data)
    except FileNotFoundError:
        _fail(parser, f"cannot read {args.data}: no such file")
    except (OSError, ValueError) as error:
        _fail(parser, f"cannot read {args.data}: {str(error).splitlines()[0]}")
    from . import KMeans, MiniBatchKMeans

    estimator = (KMeans if args.method == "kmeans" else MiniBatchKMeans)(random_state=args.seed)
    ks = list(range(low, high + 1))
    progress = ProgressBar(len(ks), enabled=False if args.no_progress else None)
    method = types.SimpleNamespace(name=args.method)
    try:
        result = sweep_n_clusters(
            X,
            ks,
            estimator=estimator,
            silhouette_sample_size=args.silhouette_sample,
            random_state=args.seed,
            progress=lambda k: progress(types.SimpleNamespace(name=f"k={k}"), method),
        )
    except ValueError as error:
        progress(None, None)
        _fail(parser, str(error).splitlines()[0])
    progress(None, None)
    print(result)
    print(f"elbow: k={result.elbow}" if result.elbow is not None else "elbow: none found")
    print(f"best silhouette: k={result.best_silhouette}")
    try:
        if args.json:
            _files.write_text(args.json, json.dumps(result.to_dict(), indent=2) + "\n")
        if args.plot:
            result.plot(args.plot)
    except _files.OutputError as error:
        _fail(parser, str(error))
    return 0


def _range(parser, option, text, example):
    """``"2..20"`` -> ``(2, 20)``; one line and exit status 2 for anything else."""
    try:
        low, high = (int(part) for part in text.split(".."))
    except ValueError:
        _fail(parser, f"{option} takes LO..HI, e.g. {example}, got {text!r}")
    return low, high


def _sweep_counts(parser, sweep):
    """``"2..1024"`` -> ``[2, 4, ..., 1024]``: the powers of two in the range."""
    low, high = _range(parser, "--sweep", sweep, "2..1024")
    counts = [2**p for p in range(0, 31) if low <= 2**p <= high]
    if not counts:
        _fail(parser, f"--sweep {sweep}: no power of two in that range")
    return counts


def _check_output_path(parser, path):
    from PIL import Image

    extension = os.path.splitext(path)[1].lower()
    if Image.registered_extensions().get(extension) not in Image.SAVE:
        _fail(parser, f"cannot write {path}: unknown image file extension, or one Pillow cannot write")
    _check_writable(parser, path)


def _check_writable(parser, path):
    """One line and exit status 2 if ``path`` cannot be written (see ``_files.check_writable``)."""
    try:
        _files.check_writable(path)
    except _files.OutputError as error:
        _fail(parser, str(error))


def _quantize_sweep(image, counts, args, options):
    """One PNG per colour count in the output directory, and a table."""
    import time
    import types
    import warnings

    from .bench.progress import ProgressBar
    from .quantize import psnr, quantize, save

    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as error:
        raise _files.OutputError(args.output, error.strerror or str(error)) from error
    stem = os.path.splitext(os.path.basename(args.input))[0]
    progress = ProgressBar(len(counts), enabled=False if args.no_progress else None)
    method = types.SimpleNamespace(name=args.method)
    rows = []
    for n in counts:
        progress(types.SimpleNamespace(name=f"{n} colours"), method)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = quantize(image, n, **options)
        seconds = time.perf_counter() - start
        path = os.path.join(args.output, f"{stem}-{n}.png")
        save(result, path)
        note = "  (fewer distinct colours: kept)" if caught else ""
        rows.append((n, len(result.palette), seconds, psnr(image, result.image), os.path.getsize(path), note))
    progress(None, None)
    print(f"{'colours':>8} {'palette':>8} {'time':>9} {'PSNR':>9} {'PNG size':>10}")
    for n, n_palette, seconds, db, size, note in rows:
        print(f"{n:>8} {n_palette:>8} {seconds:>8.3f}s {db:>7.2f}dB {size / 1024:>8.1f}KB{note}")
    total = sum(row[2] for row in rows)
    print(f"total {total:.2f} s for {len(rows)} images in {args.output}")
    return 0


def _command_options(args):
    """The options that change what is measured, as they would be typed."""
    options = ["--quick"] if args.quick else []
    if args.cases:
        options.append("--cases " + ",".join(_split(args.cases)))
    if args.libraries:
        options.append("--libraries " + ",".join(_split(args.libraries)))
    return options


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
