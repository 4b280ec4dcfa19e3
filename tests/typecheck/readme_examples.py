"""Every Python block of the README, type-checked and never run.

`mypy --strict tests/typecheck/readme_examples.py` checks it in CI, so the README cannot show code
that does not type-check; `tests/test_docs.py` checks that every README block is here as it is,
indented into a function of its own (so that blocks do not share names). Imports are as a user
writes them, so isort is off here.
"""

from __future__ import annotations


def readme_example_1() -> None:
    import httpx
    from httpx_retrying import RetryPolicy, RetryTransport

    policy = RetryPolicy(attempts=3, deadline=30.0)
    with httpx.Client(transport=RetryTransport(httpx.HTTPTransport(), policy=policy)) as client:
        response = client.get("https://example.org/")  # 503s, resets and timeouts are retried
        print(response.status_code, response.extensions.get("retry_history", ()))


def readme_example_2() -> None:
    import httpx
    from httpx_retrying import RetryPolicy, RetryTransport

    with httpx.Client(transport=RetryTransport()) as client:
        # These fields replace the transport policy's, for this request only.
        fields = {"attempts": 5, "deadline": 2.0}
        client.get("https://example.org/report", extensions={"retry": fields})
        # A whole policy replaces the transport's for this request.
        client.get("https://example.org/", extensions={"retry": RetryPolicy(attempts=2)})
        # No retries for this request.
        client.get("https://example.org/health", extensions={"retry": False})


def readme_example_3() -> None:
    from httpx_retrying import RetryPolicy

    # Anthropic answers 529 when it is overloaded.
    anthropic_policy = RetryPolicy(statuses=RetryPolicy().statuses | {529})
    # Under replicate, which retries 429, 503 and 504 itself: only what it does not retry.
    replicate_policy = RetryPolicy(statuses={408, 502})
