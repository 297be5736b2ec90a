"""The ``fastkm`` command (also ``python -m fastkm``).

``fastkm bench`` times fastkm beside scikit-learn (and scikit-learn-intelex and
faiss-cpu when installed) on the seeds' datasets and prints a table.
"""

import argparse
import importlib.util
import os
import sys


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
        help="comma-separated case names, globs or prefixes (e.g. 'china-k64-fit', '*-predict', 'digits')",
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
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args.parser, args)


def _bench(parser, args):
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
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            parser.error(f"cannot write {path}: no such directory")
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
    progress = bench.progress.ProgressBar(
        len(cases) * len(libraries), enabled=False if args.no_progress else None
    )
    budget = bench.QUICK if args.quick else bench.FULL
    report = bench.run(cases, libraries, budget=budget, quick=args.quick, progress=progress)

    print()
    print(bench.format_table(report))
    print()
    print(f"on {bench.report.describe_machine(report)}")
    command = " ".join(["fastkm bench", *_command_options(args)])
    if args.json:
        bench.write_json(report, args.json)
    if args.markdown:
        bench.write_markdown(report, args.markdown, command=command)
    if args.plot:
        bench.plot_speedups(report, args.plot)
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
