"""Progress of long work on stderr: a bar redrawn in place on a terminal, a line per step otherwise.

Piped output (CI logs, ``| tee``) gets plain lines, so that minutes of work
never pass in silence.
"""

import sys
import time


class ProgressBar:
    """``[#######.............]  7/26  china-k64-fit  sklearn  0:42``.

    Parameters
    ----------
    total : int
        The number of steps.
    stream : file, default sys.stderr
    enabled : bool, optional
        True: always the bar; False: nothing; None (default): the bar on a
        terminal, a line per step otherwise.
    width : int, default 24
        The bar's width in characters.
    """

    def __init__(self, total, stream=None, enabled=None, width=24):
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            self.style = "bar" if _isatty(self.stream) else "lines"
        else:
            self.style = "bar" if enabled else None
        self.width = width
        self.done = -1
        self.start = time.perf_counter()
        self._last = 0

    def __call__(self, label):
        """Start the next step, named ``label``."""
        self.done += 1
        if self.style is None:
            return
        elapsed = int(time.perf_counter() - self.start)
        clock = f"{elapsed // 60}:{elapsed % 60:02d}"
        if self.style == "lines":
            self.stream.write(f"{self.done + 1}/{self.total}  {label}  {clock}\n")
            self.stream.flush()
            return
        filled = self.width * self.done // max(self.total, 1)
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}  {label}  {clock}"
        self.stream.write("\r" + line.ljust(self._last))
        self.stream.flush()
        self._last = len(line)

    def finish(self):
        """End the bar (clears its line on a terminal)."""
        if self.style == "bar":
            self.stream.write("\r" + " " * self._last + "\r")
            self.stream.flush()


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
