"""What one run measures, in report order: the timing groups, the probes, the goals table.

To add a measurement, write a module under `groups/` (interleaved timing) or `probes/`
(anything else) with its `groups()` or `PROBES`, and its `GOALS`, and list it here.
"""

from __future__ import annotations

from .goals import Goal
from .groups import body, client, components, loopback, mock, retry, success
from .harness import Group
from .loopback import LoopbackServer
from .probes import Probe, import_time, memory, preload_memory, profile
from .settings import Settings

GROUP_MODULES = (success, mock, retry, client, loopback, body, components)
PROBE_MODULES = (memory, preload_memory, import_time, profile)

PROBES: tuple[Probe, ...] = tuple(p for module in PROBE_MODULES for p in module.PROBES)
GOALS: tuple[Goal, ...] = tuple(
    goal for module in (*GROUP_MODULES, *PROBE_MODULES) for goal in module.GOALS
)


def groups(settings: Settings, server: LoopbackServer) -> list[Group]:
    return [group for module in GROUP_MODULES for group in module.groups(settings, server)]
