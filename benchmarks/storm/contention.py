"""S1: Brooker's 2015 optimistic-concurrency race, with the package's backoff strategies.

N clients read a row's version and write with it; a write succeeds only if the
version is unchanged. Work is the server's write calls; time is the last event.
"""

from __future__ import annotations

import heapq
import itertools
import random

from .policy import BACKOFFS, AttemptState, BackoffFn

S1_NAMES = ("nobackoff", "expo", "equal", "full", "decorr")
_KINDS = {"expo": "none", "equal": "equal", "full": "full", "decorr": "decorrelated"}
_READ, _READ_REPLY, _WRITE, _WRITE_REPLY = range(4)


def _strategy(name: str, rng: random.Random) -> BackoffFn | None:
    """`expo(n) = min(2000, 5 * 2**n)` ms for the n-th retry is the package's
    `initial * 2**(attempt_number - 1)` with initial 10 ms; decorrelated starts at 5 ms."""
    if name == "nobackoff":
        return None
    kind = _KINDS[name]
    initial = 0.005 if kind == "decorrelated" else 0.010
    return BACKOFFS[kind](initial, 2.0, random=rng.random)


def s1_run(n: int, name: str, seed: int, reps: int) -> tuple[float, float]:
    """Mean server write calls and mean time of the last event (ms) per rep."""
    rng = random.Random(f"{seed}-{n}-{name}")
    strategy = _strategy(name, rng)
    calls_total = 0
    time_total = 0.0
    for _ in range(reps):
        calls, t = _one_race(n, rng, strategy)
        calls_total += calls
        time_total += t
    return calls_total / reps, time_total / reps


def _one_race(n: int, rng: random.Random, strategy: BackoffFn | None) -> tuple[int, float]:
    normal = rng.normalvariate
    seq = itertools.count()
    states = [AttemptState() for _ in range(n)]
    attempts = [0] * n
    heap = [(abs(normal(10, 2)), next(seq), _READ, c, 0) for c in range(n)]
    heapq.heapify(heap)
    version = calls = 0
    t = 0.0
    while heap:
        t, _, kind, c, payload = heapq.heappop(heap)
        if kind == _READ:
            nxt = (t + abs(normal(10, 2)), next(seq), _READ_REPLY, c, version)
        elif kind == _READ_REPLY:
            nxt = (t + abs(normal(10, 2)), next(seq), _WRITE, c, payload)
        elif kind == _WRITE:
            calls += 1
            ok = payload == version
            version += ok
            nxt = (t + abs(normal(10, 2)), next(seq), _WRITE_REPLY, c, int(ok))
        else:
            if payload:
                continue
            attempts[c] += 1
            delay = abs(normal(10, 2))
            if strategy is not None:
                state = states[c]
                state.attempt_number = attempts[c]
                delay += strategy(state) * 1000.0
            nxt = (t + delay, next(seq), _READ, c, 0)
        heapq.heappush(heap, nxt)
    return calls, t
