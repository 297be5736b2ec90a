"""A one-line progress bar on a terminal (nothing when the stream is not one)."""

import sys
import time


class ProgressBar:
    """``[#######.............]  7/26  china-k64-fit  sklearn  0:42`` redrawn in place.

    Parameters
    ----------
    total : int
        The number of steps.
    stream : file, default sys.stderr
    enabled : bool, optional
        Draw the bar; by default only when ``stream`` is a terminal.
    width : int, default 24
        The bar's width in characters.
    """

    def __init__(self, total, stream=None, enabled=None, width=24):
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.width = width
        self.done = -1
        self.start = time.perf_counter()
        self._last = 0

    def __call__(self, case, library):
        """Start the next step (``case`` run by ``library``); ``(None, None)`` ends the bar."""
        self.done += 1
        if not self.enabled:
            return
        if case is None:
            self.stream.write("\r" + " " * self._last + "\r")
            self.stream.flush()
            return
        filled = self.width * self.done // max(self.total, 1)
        elapsed = int(time.perf_counter() - self.start)
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}  "
            f"{case.name}  {library.name}  {elapsed // 60}:{elapsed % 60:02d}"
        )
        self.stream.write("\r" + line.ljust(self._last))
        self.stream.flush()
        self._last = len(line)
