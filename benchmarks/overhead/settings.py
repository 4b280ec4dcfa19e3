"""How much each part of the benchmark measures: the full run, and the `--quick` smoke run.

A timing group's size is a `Size`: N logical requests per block, and the number of
timed rounds (each round runs one block of every configuration of the group).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Size:
    n: int  # logical requests per block (a configuration may scale it, see `Config.scale`)
    rounds: int  # timed rounds, after one untimed warm-up round


@dataclasses.dataclass(frozen=True)
class Settings:
    quick: bool
    success: Size  # direct transport call on an in-memory inner transport
    mock: Size  # direct transport call on httpx.MockTransport
    retry: Size  # direct transport call, retry and connection-error paths
    client: Size  # Client.get over MockTransport
    loopback: Size  # Client.get to the loopback server, success path
    loopback_retry: Size  # Client.get to the loopback server, retry path
    body: Size  # Client.get of a 10 KiB body from the loopback server
    download: Size  # a 100 MB download from the loopback server
    components: Size  # single operations a retry can involve
    mem_first: int  # memory probe: requests before the first reading
    mem_total: int  # memory probe: requests before the last reading
    import_runs: int  # fresh processes timing `import httpx_retrying`
    profile_n: int  # logical requests under cProfile


#: The full run: about 6 minutes on 2 vCPUs.
FULL = Settings(
    quick=False,
    success=Size(400_000, 21),
    mock=Size(20_000, 11),
    retry=Size(40_000, 15),
    client=Size(200, 151),
    loopback=Size(1_000, 9),
    loopback_retry=Size(300, 9),
    body=Size(1_000, 9),
    download=Size(1, 7),
    components=Size(100_000, 15),
    mem_first=100_000,
    mem_total=1_000_000,
    import_runs=15,
    profile_n=20_000,
)


def smoke(full: Settings) -> Settings:
    """About a hundredth of every count and two rounds: keeps the code working, in seconds."""
    changes: dict[str, object] = {"quick": True}
    for field in dataclasses.fields(full):
        value = getattr(full, field.name)
        if isinstance(value, Size):
            changes[field.name] = Size(min(max(value.n // 100, 10), 2_000, value.n), 2)
        elif type(value) is int:
            changes[field.name] = max(value // 100, 2)
    return dataclasses.replace(full, **changes)  # type: ignore[arg-type]


QUICK = smoke(FULL)
