"""Print each library's speed-up over scikit-learn (median over median) after a benchmark run."""

import os

# Time the compiled kernels, never scikit-learn answering while they compile.
os.environ["FASTKM_COMPILE"] = "wait"


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    _write_distance_rates(terminalreporter.write_line, session.benchmarks)
    _write_algorithm_speedups(terminalreporter.write_line, session.benchmarks)
    _write_psnr_differences(terminalreporter.write_line, session.benchmarks)
    groups = {}
    for bench in session.benchmarks:
        lib = bench.extra_info.get("library")
        if lib and bench.stats is not None:
            groups.setdefault(bench.group, {})[lib] = bench
    rows = [(g, libs) for g, libs in sorted(groups.items()) if "sklearn" in libs and len(libs) > 1]
    if not rows:
        return
    write = terminalreporter.write_line
    write("")
    write("speed-up over scikit-learn (medians, same process) and inertia ratio:")
    write(f"{'group':<48}{'library':<10}{'time':>12}{'sklearn':>12}{'speed-up':>9}{'inertia ratio':>14}")
    for group, libs in rows:
        sk = libs["sklearn"]
        for lib, bench in sorted(libs.items()):
            if lib == "sklearn":
                continue
            speedup = sk.stats.median / bench.stats.median
            i_lib, i_sk = bench.extra_info.get("inertia"), sk.extra_info.get("inertia")
            ratio = f"{i_lib / i_sk:.9f}" if i_lib is not None and i_sk else "-"
            write(
                f"{group:<48}{lib:<10}{bench.stats.median * 1e3:>10.2f}ms"
                f"{sk.stats.median * 1e3:>10.2f}ms{speedup:>9.2f}x{ratio:>14}"
            )


def _write_distance_rates(write, benchmarks):
    """For kernel benchmarks that record their distance count: distances per second."""
    rows = [b for b in benchmarks if b.stats is not None and "distances" in b.extra_info]
    if not rows:
        return
    write("")
    write("distances per second (median):")
    for bench in rows:
        rate = bench.extra_info["distances"] / bench.stats.median
        write(f"{bench.name:<50}{rate / 1e9:>8.2f} G/s")


def _write_algorithm_speedups(write, benchmarks):
    """For the exact-algorithm groups: each algorithm's speed-up over brute force, and auto's time
    over the fastest fixed algorithm's."""
    groups = {}
    for bench in benchmarks:
        if bench.stats is not None and "algorithm" in bench.extra_info:
            groups.setdefault(bench.group, {})[bench.extra_info["algorithm"]] = bench
    rows = [(g, algs) for g, algs in sorted(groups.items()) if "lloyd" in algs]
    if not rows:
        return
    write("")
    write("exact algorithms: median time and speed-up over 'lloyd' (brute force):")
    for group, algs in rows:
        lloyd = algs["lloyd"].stats.median
        cells = [
            f"{name} {bench.stats.median * 1e3:.1f}ms {lloyd / bench.stats.median:.2f}x"
            for name, bench in algs.items()
        ]
        fixed = [bench.stats.median for name, bench in algs.items() if name != "auto"]
        if "auto" in algs and fixed:
            cells.append(f"auto/fastest {algs['auto'].stats.median / min(fixed):.2f}")
        write(f"{group:<40}" + "  ".join(cells))


def _write_psnr_differences(write, benchmarks):
    """For benchmarks that record a PSNR per colour count: each library's against scikit-learn's."""
    groups = {}
    for bench in benchmarks:
        if bench.stats is not None and "psnr" in bench.extra_info:
            groups.setdefault(bench.group, {})[bench.extra_info["library"]] = bench.extra_info
    for group, libs in sorted(groups.items()):
        if "sklearn" not in libs:
            continue
        reference = libs["sklearn"]
        write("")
        write(f"{group}: PSNR in dB (difference to scikit-learn's)")
        for name, info in sorted(libs.items()):
            if name == "sklearn":
                continue
            cells = [
                f"{n}: {ours:.2f} ({ours - theirs:+.3f})"
                for n, ours, theirs in zip(info["colours"], info["psnr"], reference["psnr"], strict=True)
            ]
            write(f"{name:<10}" + "  ".join(cells))
