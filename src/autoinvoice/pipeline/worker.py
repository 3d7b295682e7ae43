"""The worker: claims due rows, advances each by one step, and decides by error type alone
whether to retry (exponential backoff with jitter, ``Retry-After`` honoured), hold or fail."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from autoinvoice.bootstrap import App
from autoinvoice.connectors import journal
from autoinvoice.connectors.errors import ConnectorError, RateLimited, TransientError
from autoinvoice.documents.email import DeliveryError
from autoinvoice.pipeline import credit, steps
from autoinvoice.pipeline.build import build_step
from autoinvoice.pipeline.revise import revise_step
from autoinvoice.pipeline.states import (
    CLAIMABLE,
    CREDIT_CREATED,
    CREDIT_READY,
    LEASE,
    REVISE,
    DocState,
    Handoff,
    task_of,
)
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow

log = logging.getLogger("autoinvoice.worker")
#: What a step returns: the task to run next on the same row at once, another row to go on
#: with (``Handoff``), or None to stop.
Next: TypeAlias = "str | Handoff | None"
#: A step advances one row by one task (an invoice's state, a credit note's, or a correction).
Step = Callable[[App, int], Next]
__all__ = ["LEASE", "StepProblem", "Worker"]


@dataclass(frozen=True)
class StepProblem:
    """A step that did not succeed in this run: failed for good, or retried at ``retry_at``."""

    tenant: str
    job_id: str
    step: str
    error: str
    retry_at: datetime | None = None

    def __str__(self) -> str:
        outcome = (f"retrying at {self.retry_at.isoformat()}" if self.retry_at
                   else "failed (needs an operator: invoices retry)")
        return f"{self.tenant}/{self.job_id} step {self.step}: {outcome}: {self.error}"


@dataclass
class Worker:
    app: App
    batch: int = 50
    concurrency: int = 1
    rng: random.Random = field(default_factory=random.Random)
    processed: int = 0
    #: every step of this worker's runs that failed or was put off for a retry
    problems: list[StepProblem] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run_until_idle(self) -> int:
        """Do everything due now; returns the number of steps taken. Work that becomes due
        while this runs (a retry, the next payment check) is left for the next run, so this
        always ends."""
        start, cutoff = self.processed, self.app.clock()
        if self.concurrency == 1:
            while claimed := self._claim(cutoff, self.batch):
                for row_id, state in claimed:
                    self.advance(row_id, state)
        else:
            self._run_pool(cutoff)
        return self.processed - start

    def _run_pool(self, cutoff: datetime) -> None:
        """Keep every thread busy: claim a row as soon as a thread is free, never a batch
        that the fastest threads would wait on."""
        with ThreadPoolExecutor(self.concurrency) as pool:
            running: set[Future[None]] = set()
            while True:
                free = self.concurrency - len(running)
                claimed = self._claim(cutoff, free) if free else []
                running |= {pool.submit(self.advance, *row) for row in claimed}
                if not running:
                    return
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()

    def run_forever(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        while not stop.is_set():
            if not self.run_until_idle():
                stop.wait(poll_seconds)

    def _claim(self, cutoff: datetime, limit: int) -> list[tuple[int, str]]:
        with self.app.sessions.begin() as session:
            claimed = repo.claim_due(session, CLAIMABLE, cutoff, self.app.clock() + LEASE,
                                     limit)
        return [(row_id, task_of(state, kind, correction))
                for row_id, state, kind, correction in claimed]

    def advance(self, row_id: int, state: str | None) -> None:
        """Run tasks for one claimed row while each leaves it due at once (or one fails);
        a ``Handoff`` goes on with the row it names (a new revision, a credit note)."""
        task: Next = state
        while task is not None:
            if isinstance(task, Handoff):
                row_id, task = task.row_id, task.task
            step = self._step_for(task)
            if step is None:
                self._rest(row_id)
                return
            task = self._attempt(row_id, task, step)

    def _step_for(self, task: str) -> Step | None:
        return {
            DocState.PENDING_TRIGGERS: self._build,
            DocState.READY: steps.create_step,
            DocState.CREATED: steps.send_step,
            DocState.SENT: steps.poll_payment_step,
            REVISE: revise_step,
            CREDIT_READY: credit.create_step,
            CREDIT_CREATED: credit.deliver_step,
        }.get(task)

    def _rest(self, row_id: int) -> None:
        """A claimed row with nothing to do (held or failed, its correction already done)."""
        with self.app.sessions.begin() as session:
            row = session.get_one(InvoiceRow, row_id)
            if row.doc_state not in (DocState.PENDING_TRIGGERS, DocState.READY,
                                     DocState.CREATED, DocState.SENT):
                row.next_attempt_at = None

    @staticmethod
    def _build(app: App, row_id: int) -> str | None:
        now = app.clock()
        with app.sessions.begin() as session:
            row = session.get_one(InvoiceRow, row_id, with_for_update=True)
            following = build_step(app, session, row, now)
            if following is not None:  # still ours: this worker goes on to create it
                row.next_attempt_at = now + LEASE
            return following

    def _attempt(self, row_id: int, state: str, step: Step) -> Next:
        """The step's outcome (the state to run next, now), or None when it failed."""
        try:
            with journal.collecting() as exchanges:
                following = self._journaled(row_id, state, step, exchanges)
        except (TransientError, DeliveryError) as exc:
            transient = isinstance(exc, TransientError) or getattr(exc, "transient", False)
            self._failed_attempt(row_id, state, exc, retry=transient)
            return None
        except ConnectorError as exc:
            self._failed_attempt(row_id, state, exc, retry=False)
            return None
        except Exception as exc:  # a bug or bad data: kept on the row for an operator
            log.exception("job row %s: unexpected error in step %s", row_id, state)
            self._failed_attempt(row_id, state, exc, retry=False)
            return None
        with self._lock:
            self.processed += 1
        return following

    def _journaled(self, row_id: int, state: str, step: Step,
                   exchanges: list[dict[str, Any]]) -> Next:
        """The step, its platform requests and responses kept for the audit pack: with the
        entry that records its outcome, else (it failed before recording: a refused request
        is part of the record too) on their own."""
        try:
            return step(self.app, row_id)
        finally:
            if exchanges:
                self._keep_exchanges(row_id, state)

    def _keep_exchanges(self, row_id: int, state: str) -> None:
        """Exchanges no entry took (the step failed first): an entry of their own, which
        stores them and chains their hash and request ids (``repo.record``)."""
        now = self.app.clock()
        with self.app.sessions.begin() as session:
            repo.record(session, session.get_one(InvoiceRow, row_id), now,
                        "platform_exchanges", step=state)

    def _failed_attempt(self, row_id: int, state: str, exc: Exception, *, retry: bool) -> None:
        now = self.app.clock()
        policy = self.app.config.worker
        with self.app.sessions.begin() as session:
            row = session.get_one(InvoiceRow, row_id)
            row.attempts += 1
            row.last_error = f"{type(exc).__name__}: {exc}"
            request_id = getattr(exc, "request_id", None)
            log.warning("job %s step %s failed (attempt %d): %s", row.job_id, state,
                        row.attempts, row.last_error)
            if state == DocState.SENT:  # the invoice is out; only its payment check failed
                row.next_attempt_at = now + self._delay(row.attempts, exc)
                repo.record(session, row, now, "payment_check_failed", error=row.last_error,
                            request_id=request_id)
            elif retry and row.attempts < policy.max_attempts:
                row.next_attempt_at = now + self._delay(row.attempts, exc)
                repo.record(session, row, now, "retry_scheduled", error=row.last_error,
                            attempt=row.attempts, at=row.next_attempt_at.isoformat(),
                            request_id=request_id)
            else:
                row.next_attempt_at = None
                repo.record(session, row, now, "failed", to_state=DocState.FAILED,
                            error=row.last_error, attempts=row.attempts, step=state,
                            request_id=request_id)
            problem = StepProblem(row.tenant, row.job_id, state, row.last_error,
                                  row.next_attempt_at)
        with self._lock:
            self.problems.append(problem)

    def _delay(self, attempts: int, exc: Exception) -> timedelta:
        """Exponential backoff with full jitter in [half, whole]; ``Retry-After`` wins."""
        policy = self.app.config.worker
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return timedelta(seconds=exc.retry_after)
        ceiling = min(float(policy.backoff_max_seconds),
                      float(policy.backoff_base_seconds) * 2 ** (attempts - 1))
        return timedelta(seconds=self.rng.uniform(ceiling / 2, ceiling))
