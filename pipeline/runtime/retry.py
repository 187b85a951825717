"""The one retry layer (issue 21 item 4): transient errors retried once, at the service boundary.

Every request to a remote service is retried here and nowhere else: each S3 request in
:meth:`pipeline.warehouse.objects.ObjectStore.call` (the minio client's urllib3 pool retries nothing:
``Retry(0)``), each CSC request in :meth:`pipeline.signing.sign.RemoteSigner._post` and each PAdES
transaction in :meth:`pipeline.signing.sign.RemoteSigner.sign_pdf`. Only errors that say so are retried:
a :class:`~pipeline.runtime.errors.SohoaError` with ``transient`` (S3 or signer unreachable, a 5xx);
a refusal (bad credentials, a wrong PIN, a missing key) is raised at once. Stages above retry
nothing: a document is signed once, then its writes are retried (never signed again).

Before, loops nested: urllib3 ``Retry(2)`` inside ``Warehouse._call`` (6 tries, 15.5 s of
backoff) inside ``STORE_RETRY`` (7 tries, 51 s, each try signing again), the signer's own loop
(4 tries) inside that, and ``store_failed`` a fifth around signing. Measured against an endpoint
that drops every connection (``benchmarks/retry_budget.py``): loading gave up after 19.6 s
(18 HTTP attempts), a store after 186 s (126 attempts) — a 30-s S3 outage failed the documents
in flight. Now: 188 s and 23 attempts for both.

One budget, :data:`pipeline.runtime.config.RETRY_BUDGET_S` (180 s; ``SOHOA_RETRY_BUDGET_S``), the same
for every stage, rides out an outage of ``budget - wait_max`` (170 s) with nothing failed.
**Worst case**: a call gives up at most ``budget_s + wait_max_s`` (190 s) after its first try
began, plus the duration of its last try (connection refused: milliseconds; a hung server: the
client's timeouts, S3 5 s to connect and 120 s of silence, the signer's ``timeout_s`` 30 s).
One document's store stage shares one deadline (:func:`deadline`): its calls together give up
within that same bound, not one budget each (a call that starts past the deadline tries once).

Retries nest nowhere: a retried call made inside another one's attempt (the PAdES transaction
asking the signer for its credential) is tried once, the outer boundary retries the whole.

While an HTTP request is answered (``sohoa serve``: :class:`RequestRetryBudget`) a call retries
at most :data:`REQUEST_RETRY_BUDGET_S` (15 s, as loading did before): someone is waiting, and a
service down longer than that is a 503 (with ``Retry-After``), not a request held for 3 minutes.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import stamina

from pipeline.runtime.config import RETRY_BUDGET_S
from pipeline.runtime.errors import SohoaError

T = TypeVar("T")

log = logging.getLogger("sohoa.retry")


def _log_retry(details: stamina.instrumentation.RetryDetails) -> None:
    """stamina's hook: one line naming what failed and when it is tried again (stamina's own
    logging hook prints a bare 'stamina.retry_scheduled')."""
    log.warning("%s; trying again in %.1f s (retry %d, %.1f s waited)", details.caused_by, details.wait_for,
                details.retry_num, details.waited_so_far)  # fmt: skip


stamina.instrumentation.set_on_retry_hooks([_log_retry])


@dataclass(frozen=True)
class RetryPolicy:
    """How one boundary retries a transient error: exponential backoff (``wait_initial_s``,
    doubling, at most ``wait_max_s``, plus up to ``wait_jitter_s`` of jitter, capped at
    ``wait_max_s``) until ``budget_s`` has passed since the first try; ``attempts``: at most
    that many tries (None: as many as the budget allows; tests of a dead endpoint use 1 or 2)."""

    budget_s: float = RETRY_BUDGET_S
    attempts: int | None = None
    wait_initial_s: float = 0.5
    wait_max_s: float = 10.0
    wait_jitter_s: float = 1.0

    @property
    def worst_case_s(self) -> float:
        """Latest moment (seconds after the first try began) the last try can start."""
        return self.budget_s + self.wait_max_s


DEFAULT_POLICY = RetryPolicy()

#: retry budget of one call made while answering an HTTP request (see the module docstring)
REQUEST_RETRY_BUDGET_S = 15.0

#: deadline (time.monotonic()) shared by the calls of one unit of work (:func:`deadline`)
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("sohoa_retry_deadline", default=None)
#: a cap on every call's budget in this context (:func:`budget_cap`)
_CAP: contextvars.ContextVar[float | None] = contextvars.ContextVar("sohoa_retry_cap", default=None)
#: set while an attempt of a retrying boundary runs: a retrying call inside it tries once
_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("sohoa_retry_inside", default=False)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, SohoaError) and exc.transient


@contextlib.contextmanager
def deadline(budget_s: float) -> Iterator[float]:
    """Calls made in this context (and in contexts copied from it: ``copy_context().run``) give
    up retrying ``budget_s`` from now, whatever their own budget left. Nested: the earlier wins."""
    at = time.monotonic() + budget_s
    outer = _DEADLINE.get()
    token = _DEADLINE.set(at if outer is None else min(outer, at))
    try:
        yield at
    finally:
        _DEADLINE.reset(token)


@contextlib.contextmanager
def budget_cap(budget_s: float) -> Iterator[None]:
    """Each call made in this context retries at most ``budget_s`` (its own budget if smaller)."""
    token = _CAP.set(budget_s)
    try:
        yield
    finally:
        _CAP.reset(token)


class RequestRetryBudget:
    """ASGI middleware: every call made while answering a request retries at most
    :data:`REQUEST_RETRY_BUDGET_S` (the request's threads inherit the cap: anyio copies the context)."""

    def __init__(self, app, budget_s: float = REQUEST_RETRY_BUDGET_S):
        self.app = app
        self.budget_s = budget_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with budget_cap(self.budget_s):
            await self.app(scope, receive, send)


def retry(fn: Callable[[], T], policy: RetryPolicy = DEFAULT_POLICY, *, what: str = "call") -> T:
    """Call ``fn``; on a transient :class:`SohoaError`, back off and call it again, within the
    policy's budget (and the current :func:`deadline`). Any other error is raised at once."""
    if _INSIDE.get():  # an outer boundary retries: one try here
        return fn()
    budget = policy.budget_s
    cap = _CAP.get()
    if cap is not None:
        budget = min(budget, cap)
    at = _DEADLINE.get()
    if at is not None:
        budget = min(budget, at - time.monotonic())
    attempts: int | None = policy.attempts
    timeout: float | None = budget
    if budget <= 0:  # the deadline has passed: one last try, no backoff
        attempts, timeout = 1, None
    started = time.monotonic()
    for attempt in stamina.retry_context(
        on=is_transient,
        attempts=attempts,
        timeout=timeout,
        wait_initial=policy.wait_initial_s,
        wait_max=policy.wait_max_s,
        wait_jitter=min(policy.wait_jitter_s, policy.wait_max_s),
    ):
        with attempt:
            if attempt.num > 1:
                log.info("%s: try %d, %.1f s after the first", what, attempt.num, time.monotonic() - started)
            token = _INSIDE.set(True)
            try:
                return fn()
            finally:
                _INSIDE.reset(token)
    raise AssertionError("unreachable")
