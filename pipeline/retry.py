"""Retry with exponential backoff for transient errors (S3 or signer briefly unavailable)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from .errors import SohoaError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    initial_delay_s: float = 0.5
    max_delay_s: float = 20.0
    multiplier: float = 2.0

    def delays(self):
        delay = self.initial_delay_s
        for _ in range(self.attempts - 1):
            yield delay * (0.75 + random.random() / 2)
            delay = min(delay * self.multiplier, self.max_delay_s)


DEFAULT_POLICY = RetryPolicy()


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, SohoaError) and exc.transient


def retry(fn: Callable[[], T], policy: RetryPolicy = DEFAULT_POLICY, *, sleep=time.sleep) -> T:
    """Call ``fn``; on a transient :class:`SohoaError`, wait and try again, up to the policy."""
    delays = policy.delays()
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise
            sleep(delay)
