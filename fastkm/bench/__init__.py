"""fastkm beside scikit-learn (and optional peers) on the seeds' datasets.

The case table (:mod:`fastkm.bench.cases`) is shared by ``fastkm bench`` and
the pytest-benchmark suite in ``benchmarks/``. Nothing here runs at import.
"""

from . import cluster, progress, report
from .cases import CASES, Case, UnknownCaseError, select_cases
from .libraries import LIBRARIES, resolve_libraries
from .measure import FULL, QUICK, Budget
from .report import format_table, plot_speedups, to_json, to_markdown, write_json, write_markdown
from .runner import Report, run

__all__ = [
    "CASES",
    "FULL",
    "LIBRARIES",
    "QUICK",
    "Budget",
    "Case",
    "Report",
    "UnknownCaseError",
    "cluster",
    "format_table",
    "plot_speedups",
    "progress",
    "report",
    "resolve_libraries",
    "run",
    "select_cases",
    "to_json",
    "to_markdown",
    "write_json",
    "write_markdown",
]
