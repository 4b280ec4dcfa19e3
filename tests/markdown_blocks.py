"""The Python blocks of the README and the documentation pages, for the tests that run them.

A block is a fenced ```` ```python ```` block; anything else (```` ```sh ````,
```` ```text ````) is not run. `tests/test_docs.py` runs every block against a
local server, except those of `docs/sdks.md`, which need the SDKs' fake API and
run in `tests/test_sdks.py`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

__all__ = ["DOCS", "README", "ROOT", "SDK_PAGE", "Block", "documents", "python_blocks"]

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: The page whose blocks call the openai, anthropic and replicate SDKs.
SDK_PAGE = DOCS / "sdks.md"

_FENCE = re.compile(r"^```python\n(.*?)^```$", flags=re.DOTALL | re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Block:
    """One Python block: where it is (file and first line) and its code."""

    path: Path
    line: int
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [
        Block(path, text.count("\n", 0, match.start()) + 2, match.group(1))
        for match in _FENCE.finditer(text)
    ]


def documents() -> list[Path]:
    """The README and every Markdown page of the site."""
    return [README, *sorted(DOCS.rglob("*.md"))]
