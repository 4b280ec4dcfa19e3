"""Number formatting shared by the goals and the report."""

from __future__ import annotations


def us(value: float) -> str:
    """Microseconds with three significant decimals below 10, fewer above."""
    if abs(value) < 10:
        return f"{value:.3f}"
    if abs(value) < 1000:
        return f"{value:.2f}"
    return f"{value:.1f}"


def signed(value: float) -> str:
    return ("+" if value >= 0 else "") + us(value)


def span(low: str, high: str) -> str:
    return f"[{low}, {high}]"
