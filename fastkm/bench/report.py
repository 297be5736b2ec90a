"""A run's results as a terminal table, markdown, JSON and a speed-up plot."""

import json

from .. import _files
from . import cluster
from .libraries import REFERENCE

FORMAT_VERSION = 1


def format_seconds(seconds):
    """Three significant digits in s, ms or us: ``2.91 s``, ``36.7 ms``, ``112 us``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale or unit == "us":
            value = seconds / scale
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f} {unit}"
    raise AssertionError("unreachable")


def _others(report):
    return [name for name in report.libraries if name != REFERENCE]


def _accuracy_libraries(report):
    return [n for n in report.libraries if any(_accuracy(r, n) is not None for r in report.results)]


def _accuracy(result, name):
    m = result.measurements.get(name)
    return None if m is None else m.accuracy


def rows(report):
    """The table: a header row, then one row of strings per case."""
    others = _others(report)
    with_accuracy = _accuracy_libraries(report)
    header = ["case", REFERENCE]
    for name in others:
        header += [name, f"{name} speed-up", f"{name} inertia ratio"]
    if with_accuracy:
        header.append(f"digits accuracy ({' / '.join(with_accuracy)})")
    table = [header]
    for result in _in_process_results(report):
        ref = result.measurements.get(REFERENCE)
        row = [result.case.name, format_seconds(ref.median) if ref else "-"]
        for name in others:
            m = result.measurements.get(name)
            speedup, ratio = result.speedup(name), result.inertia_ratio(name)
            row += [
                format_seconds(m.median) if m else "-",
                f"{speedup:.2f}x" if speedup is not None else "-",
                f"{ratio:.6f}" if ratio is not None else "-",
            ]
        if with_accuracy:
            values = [_accuracy(result, n) for n in with_accuracy]
            row.append(" / ".join(f"{v:.3f}" for v in values) if all(v is not None for v in values) else "")
        table.append(row)
    return table


def _in_process_results(report):
    return [r for r in report.results if not r.case.on_cluster]


def cluster_rows(report):
    """The Dask case's table: seconds per iteration, a row per algorithm, or None without the case.

    The time ratio to fastkm in one process (fastkm.dask aims at 1.3x at
    most) and dask-ml's time over fastkm.dask's (it runs Lloyd's iterations).
    """
    results = [r for r in report.results if r.case.on_cluster]
    if not results:
        return None
    header = [
        "case (s / iteration)",
        cluster.ONE_PROCESS,
        cluster.DASK,
        "fastkm.dask / fastkm",
        cluster.DASK_ML,
        "dask-ml / fastkm.dask",
    ]
    table = [header]
    for result in results:
        m = result.measurements
        dask_ml = m.get(cluster.DASK_ML)
        for suffix, label in (("", "auto"), (cluster.LLOYD, "lloyd")):
            local, ours = m.get(cluster.ONE_PROCESS + suffix), m.get(cluster.DASK + suffix)
            if local is None or ours is None:
                table.append([f"{result.case.name} ({label})", "-", "-", "-", "-", "-"])
                continue
            table.append(
                [
                    f"{result.case.name} ({label})",
                    format_seconds(local.median),
                    format_seconds(ours.median),
                    f"{ours.median / local.median:.2f}x",
                    format_seconds(dask_ml.median) if dask_ml else "not installed",
                    f"{dask_ml.median / ours.median:.1f}x" if dask_ml else "-",
                ]
            )
    return table


def _aligned(table):
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for n, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(report):
    """The results as aligned plain text, for the terminal (the Dask case's table after)."""
    tables = [rows(report)] if _in_process_results(report) else []
    if cluster_rows(report):
        tables.append(cluster_rows(report))
    return "\n\n".join(_aligned(table) for table in tables)


def describe_machine(report):
    """One line naming the machine and the versions."""
    m = report.machine
    versions = ", ".join(f"{name} {version}" for name, version in report.libraries.items())
    return (
        f"{m.get('cpu', '?')}, {m.get('logical_cpus', '?')} logical CPUs, "
        f"{m.get('numba_threads', '?')} Numba threads; {m.get('platform', '?')}; "
        f"Python {m.get('python', '?')}, numpy {m.get('numpy', '?')}, numba {m.get('numba', '?')}; "
        f"{versions}; {m['dask'] + '; ' if 'dask' in m else ''}{m.get('date', '?')}"
    )


def _markdown_table(table):
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "|".join("---" for _ in table[0]) + "|"]
    return lines + ["| " + " | ".join(cell or " " for cell in row) + " |" for row in table[1:]]


def to_markdown(report, command="fastkm bench"):
    """The results as a markdown section: how they were measured, then the tables."""
    lines = [f"`{command}` on {describe_machine(report)}."]
    if _in_process_results(report):
        lines += [
            "",
            f"Times are medians of repeated calls after one warm-up call (JIT compilation excluded); "
            f"speed-up is {REFERENCE}'s median over the library's; inertia ratio is the library's "
            f"inertia over {REFERENCE}'s, both computed on the result's labels and centres.",
            "",
            *_markdown_table(rows(report)),
        ]
    if cluster_rows(report):
        lines += [
            "",
            "The Dask case: seconds per iteration on a LocalCluster of 2 workers x 1 thread, "
            "fastkm in one process on the same data and cores, all from the same initial centres; "
            "medians over rounds in which the libraries take turns (see `fastkm.bench.cluster`).",
            "",
            *_markdown_table(cluster_rows(report)),
        ]
    return "\n".join(lines) + "\n"


def to_json(report):
    """Everything measured, raw times included, as a JSON-ready dict."""
    results = []
    for result in report.results:
        case = result.case
        entry = {
            "case": case.name,
            "group": case.group,
            "dataset": case.dataset,
            "k": case.k,
            "task": case.task,
            "description": case.description,
            "reference": result.reference,
            "libraries": {},
        }
        for name, m in result.measurements.items():
            entry["libraries"][name] = {
                "median_s": m.median,
                "times_s": list(m.times),
                "inertia": m.inertia,
                "accuracy": m.accuracy,
                "n_iter": m.n_iter,
                "speedup": result.speedup(name),
                "inertia_ratio": result.inertia_ratio(name),
            }
        results.append(entry)
    return {
        "format": FORMAT_VERSION,
        "reference": REFERENCE,
        "quick": report.quick,
        "machine": report.machine,
        "libraries": report.libraries,
        "results": results,
    }


write_text = _files.write_text


def write_json(report, path):
    write_text(path, json.dumps(to_json(report), indent=2) + "\n")


def write_markdown(report, path, command="fastkm bench"):
    write_text(path, to_markdown(report, command))


def plot_speedups(report, path):
    """Horizontal bars: each library's speed-up over the reference, per case (log scale).

    Needs matplotlib (``pip install 'fastkm[bench]'``).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    others = _others(report)
    results = [r for r in _in_process_results(report) if any(r.speedup(n) for n in others)]
    height = 0.8 / max(len(others), 1)
    fig = Figure(figsize=(8, 1.2 + 0.32 * len(results) * max(len(others), 1) ** 0.5))
    ax = fig.subplots()
    for i, name in enumerate(others):
        ys = [n + i * height for n, r in enumerate(results) if r.speedup(name)]
        values = [r.speedup(name) for r in results if r.speedup(name)]
        ax.barh(ys, values, height=height, label=name)
    ax.set_yticks([n + height * (len(others) - 1) / 2 for n in range(len(results))])
    ax.set_yticklabels([r.case.name for r in results], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"speed-up over {REFERENCE} (median time ratio)")
    ax.set_title(f"{REFERENCE} = 1x; {report.machine.get('cpu', '')}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with _files.replacing(path, ".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
