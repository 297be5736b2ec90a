"""Long compiled loops run in slices, so that Ctrl-C is answered.

Python raises KeyboardInterrupt only once a compiled call returns: a loop
run in one call (MiniBatchKMeans.fit's steps, the k-means++ centres) would
keep a notebook's "interrupt kernel" or a terminal's Ctrl-C waiting until
the fit ends. These loops run a slice at a time instead, each sized from the
time the slices before it took, so that a slice lasts about
``SLICE_SECONDS``. Their state lives in their arrays and a slice ends where
the next begins: slicing changes no result.
"""

import time

# How long a slice should last: short enough for Ctrl-C to feel immediate,
# long enough for the calls' own cost (tens of microseconds) to vanish.
SLICE_SECONDS = 0.1

# A slice is at most this many times the one before: a first unit that ran
# fast by chance (warm caches, an easy step) cannot make the next slice huge.
MAX_GROWTH = 16

# Seconds per multiply-add a first slice is sized with: a few times slower
# than the kernels run here, so that a first slice stays short on a slower
# machine, and a small fit still runs in one call.
SECONDS_PER_OPERATION = 2e-10


def first_slice(operations_per_unit):
    """The units of a first slice, from a unit's multiply-adds (its size, before any is timed)."""
    return max(1, int(SLICE_SECONDS / (max(operations_per_unit, 1) * SECONDS_PER_OPERATION)))


class Pace:
    """The units of work (steps, centres) to hand the next compiled call.

    Used as::

        pace = Pace()
        while done < total:
            started = pace.start()
            reached = run(done, min(total, done + pace.size))
            pace.took(reached - done, started)
            done = reached
    """

    def __init__(self, first=1, seconds=None):
        self.size = first
        self.seconds = SLICE_SECONDS if seconds is None else seconds

    @staticmethod
    def start():
        """The clock before a call (give it back to ``took``)."""
        return time.perf_counter()

    def took(self, units, started):
        """The last call ran ``units`` units from ``started``: size the next slice."""
        if units <= 0:
            return
        elapsed = time.perf_counter() - started
        if elapsed <= 0:
            fitting = self.size * MAX_GROWTH
        else:
            fitting = int(units * self.seconds / elapsed)
        self.size = max(1, min(fitting, units * MAX_GROWTH))


def in_slices(run, total, operations_per_unit):
    """``run(first, stop)`` over the units ``0 .. total`` in slices of about ``SLICE_SECONDS``.

    For loops whose every unit runs (a loop that may stop early, or stop at
    a unit for the caller to settle, paces itself with ``Pace``).
    ``operations_per_unit`` sizes the first slice (``first_slice``).
    """
    pace, done = Pace(first_slice(operations_per_unit)), 0
    while done < total:
        stop = min(total, done + pace.size)
        started = pace.start()
        run(done, stop)
        pace.took(stop - done, started)
        done = stop
