"""Numba kernels: every compiled function of fastkm lives in this package.

Kernels import nothing from the rest of fastkm. Arguments are documented as
IN (read), OUT (overwritten) or INOUT (read and updated).
"""
