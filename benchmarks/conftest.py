"""Print fastkm / scikit-learn speed-ups (median over median) after a benchmark run."""

import time


def settle():
    """Let the previous benchmark's idle threads go to sleep before timing.

    OpenBLAS (scikit-learn's BLAS) and OpenMP worker threads keep spinning for
    a while after their last task; on 2 cores they would take CPU time from
    whichever library is timed next.
    """
    time.sleep(0.3)


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    _write_distance_rates(terminalreporter.write_line, session.benchmarks)
    groups = {}
    for bench in session.benchmarks:
        lib = bench.extra_info.get("library")
        if lib and bench.stats is not None:
            groups.setdefault(bench.group, {})[lib] = bench
    rows = [(g, libs) for g, libs in sorted(groups.items()) if {"fastkm", "sklearn"} <= set(libs)]
    if not rows:
        return
    write = terminalreporter.write_line
    write("")
    write("fastkm vs scikit-learn (medians, same process):")
    write(f"{'case':<34}{'fastkm':>11}{'sklearn':>11}{'speed-up':>10}{'inertia ratio':>16}")
    for group, libs in rows:
        fast, sk = libs["fastkm"], libs["sklearn"]
        t_fast, t_sk = fast.stats.median, sk.stats.median
        i_fast, i_sk = fast.extra_info.get("inertia"), sk.extra_info.get("inertia")
        ratio = f"{i_fast / i_sk:.9f}" if i_fast is not None and i_sk else "-"
        write(f"{group:<34}{t_fast * 1e3:>9.2f}ms{t_sk * 1e3:>9.2f}ms{t_sk / t_fast:>9.2f}x{ratio:>16}")
    _write_seed_medians(write, rows)


def _write_seed_medians(write, rows):
    """For cases timed once per seed ('...|seed=N'): the median speed-up over seeds."""
    by_case = {}
    for group, libs in rows:
        case, sep, _ = group.rpartition("|seed=")
        if sep:
            fast, sk = libs["fastkm"], libs["sklearn"]
            i_fast, i_sk = fast.extra_info.get("inertia"), sk.extra_info.get("inertia")
            by_case.setdefault(case, []).append((sk.stats.median / fast.stats.median, i_fast / i_sk))
    if not by_case:
        return
    write("")
    write("median over seeds:")
    write(f"{'case':<34}{'seeds':>6}{'speed-up':>10}{'worst inertia ratio':>21}")
    for case, results in sorted(by_case.items()):
        speedups = sorted(s for s, _ in results)
        median = speedups[len(speedups) // 2]
        worst = max(r for _, r in results)
        write(f"{case:<34}{len(results):>6}{median:>9.2f}x{worst:>21.9f}")


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
