"""Jobs that wait for a database transaction: held on the session until it commits.

A job enqueued while the Flask-SQLAlchemy session has uncommitted writes is
kept in ``session.info`` with the chain of transactions (savepoints first) it
was made in. SQLAlchemy's session events decide its fate:

- the outermost transaction commits: every held job is released (pushed to
  Redis, run in eager mode, or, for an outbox row, known to be committed);
- a savepoint rolls back: the jobs made inside it are dropped; a savepoint
  that is released keeps its jobs waiting for the outer commit;
- the outermost transaction rolls back, or the session closes without a
  commit: every held job is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import JobsError
from ..jobs.flask_job import FlaskJob, HeldStatus

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

__all__ = ["hold", "listen", "session_with_writes"]

log = logging.getLogger("flask_jobs.enqueue")

#: ``session.info`` keys: the held jobs, and whether the transaction wrote anything yet.
HELD = "flask_jobs.held"
WROTE = "flask_jobs.wrote"


@dataclass
class Held:
    """Jobs of one enqueue, and what to do with them at the commit."""

    jobs: Sequence[FlaskJob]
    #: Push them to Redis (or run them eagerly); None: they are outbox rows, committed
    #: with the transaction itself.
    release: Callable[[], None] | None
    #: The transactions it was made in, innermost first: if one rolls back, it is dropped.
    chain: tuple[SessionTransaction, ...]


def listen(db: SQLAlchemy) -> None:
    """Watch the commits and rollbacks of ``db.session`` (once per ``SQLAlchemy`` object)."""
    target = db.session
    if sa.event.contains(target, "after_commit", _after_commit):
        return
    sa.event.listen(target, "after_flush", _after_flush)
    sa.event.listen(target, "do_orm_execute", _do_orm_execute)
    sa.event.listen(target, "after_commit", _after_commit)
    sa.event.listen(target, "after_soft_rollback", _after_soft_rollback)
    sa.event.listen(target, "after_transaction_end", _after_transaction_end)


def session_with_writes(db: SQLAlchemy) -> Session | None:
    """The current app context's session when its transaction holds uncommitted writes.

    Writes, not just an open transaction: since SQLAlchemy 2.0 any read begins
    one, and a view that only reads and never commits would drop its jobs.
    """
    registry = db.session.registry
    if not registry.has():
        return None
    session: Session = registry()
    if not session.in_transaction():
        return None
    if session.info.get(WROTE) or session.new or session.deleted or session.dirty:
        return session
    return None


def hold(session: Session, jobs: Sequence[FlaskJob], release: Callable[[], None] | None) -> None:
    """Keep ``jobs`` until the session's transaction ends; ``release`` them if it commits."""
    chain: list[SessionTransaction] = []
    transaction = session.get_nested_transaction() or session.get_transaction()
    while transaction is not None:
        chain.append(transaction)
        transaction = transaction.parent
    for job in jobs:
        job._jobs_held = HeldStatus.PENDING_COMMIT
    session.info.setdefault(HELD, []).append(Held(jobs, release, tuple(chain)))


def _release(held: list[Held]) -> None:
    for entry in held:
        if entry.release is None:
            for job in entry.jobs:
                job._jobs_held = HeldStatus.IN_OUTBOX
            continue
        try:
            entry.release()
        except JobsError as exc:
            # The commit is done and cannot be undone: say exactly which jobs are lost.
            for job in entry.jobs:
                job._jobs_held = HeldStatus.DROPPED
            log.error(
                "flask-jobs: LOST %d job(s) enqueued on commit, ids %s (%s): the transaction "
                "committed but Redis did not take them; JOBS_OUTBOX = True keeps them instead",
                len(entry.jobs),
                ", ".join(job.id for job in entry.jobs),
                exc,
            )
        else:
            for job in entry.jobs:
                job._jobs_held = None


def _drop(held: Sequence[Held], why: str) -> None:
    for entry in held:
        for job in entry.jobs:
            job._jobs_held = HeldStatus.DROPPED
        log.info("flask-jobs: dropped job(s) %s: %s", ", ".join(j.id for j in entry.jobs), why)


def _after_flush(session: Session, flush_context: Any) -> None:
    session.info[WROTE] = True


def _do_orm_execute(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WROTE] = True


def _after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released: its jobs wait for the outer commit
    session.info.pop(WROTE, None)
    held = session.info.pop(HELD, None)
    if held:
        _release(held)


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    held: list[Held] | None = session.info.get(HELD)
    if not held:
        return
    dropped = [entry for entry in held if previous in entry.chain]
    if dropped:
        session.info[HELD] = [entry for entry in held if previous not in entry.chain]
        _drop(dropped, "their transaction rolled back")


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    # The outermost transaction is over; after a commit nothing is left to drop.
    session.info.pop(WROTE, None)
    held = session.info.pop(HELD, None)
    if held:
        _drop(held, "their transaction ended without a commit")
