"""Applying stored callbacks just after Safaricom has its answer (CALLBACK_APPLY=background).

With the setting on, the hook commits the event, hands it here and acknowledges at once; one
thread per process applies the events in the order they came, each exactly as the hook would
have (`callbacks.apply`: its own transaction, the payment locked first, the event finished only
if still pending). The hook's answer no longer waits for the payment's row lock, the ledger and
a second commit, so a burst of callbacks is acknowledged faster than it can be applied: the
queue absorbs it, and the cashier sees *Paid* when the queue reaches the callback.

Nothing is lost when a process dies with events queued: they are committed as pending, and the
replay job applies pending events older than a minute (app/jobs/), so production needs the
scheduler running (in the web process or `flask scheduler`), as it does anyway.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading

from flask import Flask

from app.extensions import db
from app.models import CallbackEvent

log = logging.getLogger(__name__)

EXTENSION = "pesatab_callback_applier"
DRAIN_AT_EXIT_SECONDS = 5.0  # a stopping worker applies what it queued, for at most this long
BATCH = (
    50  # events applied in one transaction at most (those already queued, never waiting for more)
)
# Events waiting in one process at most. Past it the hook applies the callback itself before
# answering, as CALLBACK_APPLY=inline does: a burst longer than the applier absorbs slows the
# answers instead of growing the queue, its memory and the wait for *Paid* without bound (at
# ~150 events/s per process, 500 is ~3 s; the replay job, a minute on, never races the queue).
BACKLOG_LIMIT = 500


class Applier:
    """A queue of stored events and the thread applying them, for one app in one process."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pid = os.getpid()
        self._queue: queue.SimpleQueue[CallbackEvent | None] = queue.SimpleQueue()
        self._unfinished = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="callback-applier", daemon=True)
        self._thread.start()
        atexit.register(self.wait, DRAIN_AT_EXIT_SECONDS)

    def submit(self, event: CallbackEvent) -> bool:
        """Queue a committed event (detached, as `callbacks.store` returns it); False, and not
        queued, when BACKLOG_LIMIT events are waiting already (the caller applies it)."""
        with self._idle:
            if self._unfinished >= BACKLOG_LIMIT:
                return False
            self._unfinished += 1
        self._queue.put(event)
        return True

    @property
    def running(self) -> bool:
        """Its thread is alive in this process (a forked child inherits the object, not the
        thread)."""
        return self.pid == os.getpid() and self._thread.is_alive()

    @property
    def backlog(self) -> int:
        """Events queued or being applied."""
        return self._unfinished

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued event is applied (True), or `timeout` seconds (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Let the thread finish what is queued, then end (tests; a process just exits)."""
        self._queue.put(None)
        self._thread.join(timeout)
        atexit.unregister(self.wait)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            # Whatever else is queued already goes in the same batch (one transaction).
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                stopping = True
                batch = [event for event in batch if event is not None]
            if batch:
                with self.app.app_context():
                    self._apply(batch)

    def _apply(self, batch: list[CallbackEvent]) -> None:
        from app.payments import callbacks

        try:
            callbacks.apply_many(batch)  # never raises for an error in applying; a backstop
        except Exception:
            log.exception(
                "callback events %s could not be applied; the replay job will",
                [event.id for event in batch],
            )
            db.session.rollback()
        finally:
            db.session.remove()
            with self._idle:
                self._unfinished -= len(batch)
                if self._unfinished == 0:
                    self._idle.notify_all()


_lock = threading.Lock()


def applier_for(app: Flask) -> Applier:
    """This process's applier for `app`, started on first use (and again in a forked child, or
    once stopped)."""
    applier = app.extensions.get(EXTENSION)
    if applier is None or not applier.running:
        with _lock:
            applier = app.extensions.get(EXTENSION)
            if applier is None or not applier.running:
                applier = app.extensions[EXTENSION] = Applier(app)
    return applier
