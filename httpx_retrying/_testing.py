"""A process-wide testing mode, like stamina's: retries without sleeping, attempts capped.

The state is one immutable tuple swapped under a lock, so every thread and task
reads a consistent value with a single attribute load, and only when a retry is
being decided: the success path never looks at it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["current", "set_testing", "testing"]

_State = tuple[bool, int | None]  # (active, attempts cap)

_OFF: _State = (False, None)
_state: _State = _OFF
_lock = threading.Lock()


def current() -> _State:
    """`(active, attempts cap)` as set by `set_testing` or `testing`."""
    return _state


def _checked(active: object, attempts: object) -> _State:
    if not isinstance(active, bool):
        raise TypeError(f"set_testing: the first argument must be a bool, got {active!r}")
    if attempts is not None and (
        isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
    ):
        raise ValueError(f"set_testing attempts must be None or an int >= 1, got {attempts!r}")
    return (True, attempts) if active else _OFF


def _swap(state: _State) -> _State:
    global _state
    with _lock:
        previous, _state = _state, state
    return previous


def set_testing(active: bool, *, attempts: int | None = None) -> None:
    """Turn the testing mode on or off for every transport in the process.

    While it is on, no transport sleeps (delays are still computed and reported
    in events and the history) and, with `attempts=N`, every policy is capped at
    N attempts (a policy with fewer keeps its own). Deadlines still apply.
    """
    _swap(_checked(active, attempts))


@contextmanager
def testing(*, attempts: int | None = None) -> Iterator[None]:  # noqa: PT028 - not a test
    """`set_testing(True, attempts=...)` for a block, restoring the previous state after it.

    A context manager: `with testing(): ...` retries without sleeping, and
    `with testing(attempts=1): ...` does not retry at all.
    """
    previous = _swap(_checked(True, attempts))
    try:
        yield
    finally:
        _swap(previous)


# Not a test, though its name says so: pytest collects `test*` names it finds in a test module.
testing.__test__ = False  # type: ignore[attr-defined]
