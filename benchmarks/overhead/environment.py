"""What the report says about where it ran: versions, the package source measured, CPUs, load."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import httpx_retrying

REPOSITORY = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = (
    "httpx-retrying",
    "httpx",
    "httpcore",
    "h11",
    "tenacity",
    "httpx-retries",
    "stamina",
    "anyio",
    "trio",
)


def versions() -> str:
    found = []
    for dist in DISTRIBUTIONS:
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} not installed")
    return ", ".join(found)


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def source_digest() -> str:
    """A digest of the imported package's .py files: the code imported now is the code measured."""
    package = Path(httpx_retrying.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def source() -> str:
    """Which package source is measured, named without paths outside this repository."""
    package = Path(httpx_retrying.__file__).resolve().parent
    if not package.is_relative_to(REPOSITORY):
        version = importlib.metadata.version("httpx-retrying")
        return f"an httpx_retrying {version} outside this checkout (not `httpx_retrying/` here)"
    head = _git(REPOSITORY, "rev-parse", "--short", "HEAD")
    dirty = _git(REPOSITORY, "status", "--porcelain", "--", package.name)
    where = f"`{package.relative_to(REPOSITORY).as_posix()}/`"
    if head:
        where += f" at git commit {head}" + (" (with uncommitted changes)" if dirty else "")
    return where


def pin() -> tuple[int | None, str]:
    """Pin this process to one CPU; return another one for the server, and what was done."""
    if not hasattr(os, "sched_getaffinity"):
        return None, "not pinned (no sched_setaffinity)"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, f"not pinned (only CPU {cpus} available)"
    os.sched_setaffinity(0, {cpus[0]})
    return cpus[1], f"benchmark on CPU {cpus[0]}, loopback server on CPU {cpus[1]}"


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def machine(pinning: str) -> str:
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} cores (os.cpu_count()); {pinning}"
    )


def python() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}"
