"""The one number check behind every constructor: errors at the boundary, naming the field."""

from __future__ import annotations

import math

__all__ = ["finite_number"]


def finite_number(
    field: str, value: object, *, minimum: float = 0.0, inclusive: bool = True
) -> float:
    """`value` as a float, or a `TypeError`/`ValueError` whose message starts with `field`.

    Booleans, NaN and infinities are refused: each would otherwise pass as a
    number and surface far from where it was given (an endless sleep, a budget
    that never empties).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{field} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not math.isfinite(number) or number < minimum or (number == minimum and not inclusive):
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise ValueError(f"{field} must be a finite number {bound}, got {value!r}")
    return number
