"""The benchmark's progress: one step per case and library (see ``fastkm._progress``)."""

from .._progress import ProgressBar as _Bar


class ProgressBar(_Bar):
    """Called with ``(case, library)`` before each step; ``(None, None)`` ends it."""

    def __call__(self, case, library):
        if case is None:
            self.finish()
            return
        super().__call__(f"{case.name}  {library.name}")
