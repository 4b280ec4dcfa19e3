"""Measurements that are not interleaved timing groups: memory, import time, a profile.

A probe runs once, after the timing groups, and renders its own report section.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..settings import Settings


@dataclasses.dataclass(frozen=True)
class Probe:
    key: str  # where its data goes in `Results.probes`
    run: Callable[[Settings], Any]
    section: Callable[[Settings, Any], list[str]]  # markdown lines, with their own heading
    analysis: bool = False  # rendered under "What the remaining cost is made of"
