"""HTTP calls worth trying again, shared by the governance clients (the OPA policy's and the
gatekeeper's): a timeout, no connection or a 5xx is tried again with exponential backoff."""

from __future__ import annotations

from typing import Callable

import httpx
import tenacity

__all__ = ["Closing", "Retryable", "send_retrying"]


class Closing:
    """``with`` support for a class with resources to release: ``close()`` at the end."""

    def close(self) -> None:
        """Release resources (nothing here)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Retryable(Exception):
    """A failure worth another try; after the last one, its text says what went wrong."""


def send_retrying(send: Callable[[], httpx.Response], *, retries: int, wait_s: float, max_wait_s: float,
                  timeout_text: str, unreachable_text: str, detail: Callable[[httpx.Response], str],
                  on_retry: Callable[[str, int], None]) -> httpx.Response:
    """``send()``, tried up to ``retries`` + 1 times: a timeout (``timeout_text``), a connection
    failure (``unreachable_text (ErrorType)``) or a 5xx (``HTTP 503`` + ``detail(response)``) is
    tried again after ``wait_s`` x 2^n seconds (at most ``max_wait_s``), ``on_retry(text, n)``
    told first. Returns the first other answer, whatever its status.

    Raises:
        Retryable: the last try failed too; its text says how.
    """
    def attempt() -> httpx.Response:
        try:
            response = send()
        except httpx.TimeoutException:
            raise Retryable(timeout_text) from None
        except httpx.RequestError as exc:
            raise Retryable(f"{unreachable_text} ({type(exc).__name__})") from None
        if response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}{detail(response)}")
        return response

    retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(retries + 1),
                                 wait=tenacity.wait_exponential(multiplier=wait_s, max=max_wait_s),
                                 retry=tenacity.retry_if_exception_type(Retryable), reraise=True,
                                 before_sleep=lambda s: on_retry(str(s.outcome.exception()), s.attempt_number))
    return retrying(attempt)
