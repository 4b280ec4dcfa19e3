"""Response bodies that satisfy the openai, anthropic and replicate SDKs' parsers.

The bodies are served by `tests.servers.FaultServer`; `json_ok` and `busy` build
its scripted replies. Each body was checked against the installed SDK's models
(openai 3.54, anthropic 2.12, replicate 1.0.7).
"""

from __future__ import annotations

import json
from typing import Any

from tests.servers import Reply, status

__all__ = [
    "ANTHROPIC_MESSAGE",
    "ANTHROPIC_MODELS",
    "ERROR",
    "OPENAI_EMBEDDINGS",
    "OPENAI_MODELS",
    "REPLICATE_MODEL",
    "REPLICATE_MODELS",
    "busy",
    "json_ok",
]


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()


#: GET /v1/models (openai): `SyncPage[Model]`.
OPENAI_MODELS = _dump(
    {"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "x"}]}
)
#: POST /v1/embeddings (openai), for `encoding_format="float"`.
OPENAI_EMBEDDINGS = _dump(
    {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
        "model": "m",
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
)
#: GET /v1/models (anthropic): `SyncPage[ModelInfo]`.
ANTHROPIC_MODELS = _dump(
    {
        "data": [
            {
                "id": "m",
                "type": "model",
                "display_name": "M",
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
            }
        ],
        "has_more": False,
        "first_id": "m",
        "last_id": "m",
    }
)
#: POST /v1/messages (anthropic): `Message`.
ANTHROPIC_MESSAGE = _dump(
    {
        "id": "msg",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "hi"}],
        "model": "m",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
)
_MODEL = {
    "url": "https://replicate.com/a/b",
    "owner": "a",
    "name": "b",
    "description": None,
    "visibility": "public",
    "github_url": None,
    "paper_url": None,
    "license_url": None,
    "run_count": 0,
    "cover_image_url": None,
    "default_example": None,
    "latest_version": None,
}
#: GET /v1/models/a/b (replicate): `Model`.
REPLICATE_MODEL = _dump(_MODEL)
#: GET /v1/models (replicate): `Page[Model]`.
REPLICATE_MODELS = _dump({"results": [_MODEL], "next": None, "previous": None})
#: An error body both openai and anthropic turn into a message (replicate reads `detail`).
ERROR = _dump(
    {"type": "error", "error": {"type": "api_error", "message": "busy"}, "detail": "busy"}
)


def json_ok(body: bytes) -> Reply:
    """A 200 with a JSON body."""
    return status(200, body, content_type="application/json")


def busy(code: int, times: int, **headers: str) -> list[Reply]:
    """`times` error replies with status `code` and a JSON error body.

    Headers as for `status()`; by default `Retry-After: 0`, so no layer waits.
    """
    headers.setdefault("retry_after", "0")
    return [status(code, ERROR, content_type="application/json", **headers)] * times
