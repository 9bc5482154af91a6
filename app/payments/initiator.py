"""Requests signed with a bar's initiator credentials and their asynchronous results, for every
kind alike (Transaction Status now; Reversal and Account Balance reuse all of it).

    request = initiator.start(bar_id, InitiatorKind.STATUS, subject, requested_by_id)  # commits
    initiator.send(request, lambda result_url, timeout_url: client.transaction_status(...))
    # ... later, at /hooks/result/<secret> or /hooks/timeout/<secret> (app/hooks/routes.py):
    record = initiator.store(secret, "result", body, source=..., size=..., too_large=...)
    initiator.apply(record)  # once: a replayed result changes nothing

Each request has its own unguessable URL secret (40 hex digits: no word Daraja refuses can
appear in it, and the log redaction masks it). A result is committed as it arrived before it is
read, then applied with one conditional UPDATE on the request's state, so a result delivered
twice, or racing its own copy, is applied once. What a result *means* is the kind's business:
HANDLERS[kind] is a module with `outcome(result, ours, subject)`, `timed_out()`,
`refused(code)` and `settled(request_id, outcome)` (app/payments/transaction_status.py for
STATUS). `settled` runs once, when the request moves, inside the transaction that moves it
(before its commit): what the kind changes in its own tables lands with the request or not at
all.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from types import ModuleType

from flask import current_app
from sqlalchemy import select, update

from app.enums import InitiatorKind, InitiatorState
from app.extensions import db
from app.models import InitiatorRequest, InitiatorResult, MpesaCredential, utcnow
from app.mpesa import DarajaError, DarajaOutcomeUnknown, InvalidRequest
from app.mpesa.initiator import InitiatorAccepted, MalformedResult, read_result
from app.payments import account_balance, bodies, transaction_status
from app.reversals import result as reversal_result
from app.settings import initiator as initiator_credentials

HANDLERS: dict[str, ModuleType] = {
    InitiatorKind.STATUS: transaction_status,
    InitiatorKind.REVERSAL: reversal_result,
    InitiatorKind.BALANCE: account_balance,
}
RESULT, TIMEOUT = "result", "timeout"
# A result may replace "no answer" (the queue timed out, or we stopped waiting): a real answer
# beats none. Nothing replaces a result.
ANSWERABLE = (InitiatorState.WAITING, InitiatorState.TIMED_OUT)
SECRET_MAX = 64


def start(
    bar_id: int, kind: str, subject: str, requested_by_id: int | None, *, commit: bool = True
) -> InitiatorRequest:
    """A new request, committed before Daraja is asked (so a fast result finds it). With
    `commit=False` it is only flushed: the caller commits it with its own rows (a reversal
    commits the request and the row that holds the payment together)."""
    request = InitiatorRequest(
        bar_id=bar_id,
        kind=kind,
        subject=subject,
        requested_by_id=requested_by_id,
        url_secret=secrets.token_hex(20),
        state=InitiatorState.WAITING,
        parameters={},
    )
    db.session.add(request)
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return request


def urls_for(request: InitiatorRequest) -> tuple[str, str]:
    """The request's ResultURL and QueueTimeOutURL."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}/hooks/result/{request.url_secret}", f"{base}/hooks/timeout/{request.url_secret}"


def send(request: InitiatorRequest, call: Callable[[str, str], InitiatorAccepted]) -> None:
    """`call(result_url, timeout_url)` asks Daraja; its answer is recorded. Commits.

    Refused (or not sendable): the request is REFUSED with Daraja's code and words. No clear
    answer: it stays WAITING, since Daraja may have taken it and its result may still come."""
    try:
        accepted = call(*urls_for(request))
    except DarajaOutcomeUnknown:
        current_app.logger.info("initiator request %s: no clear answer, waiting", request.id)
    except InvalidRequest as err:
        _refuse(request, None, str(err))
    except DarajaError as err:
        _refuse(request, err.error_code, err.message)
    else:
        db.session.execute(
            update(InitiatorRequest)
            .where(InitiatorRequest.id == request.id)
            .values(
                originator_conversation_id=accepted.originator_conversation_id or None,
                conversation_id=accepted.conversation_id or None,
            )
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    db.session.refresh(request)


def _refuse(request: InitiatorRequest, code: str | None, desc: str) -> None:
    handler = HANDLERS[request.kind]
    outcome = handler.refused(code)
    done = _settle_request(
        request.id,
        (InitiatorState.WAITING,),
        state=InitiatorState.REFUSED,
        result_code=(code or "")[:16] or None,
        result_desc=desc[:255],
        outcome=outcome,
    )
    if done:
        handler.settled(request.id, outcome)


def expire(request: InitiatorRequest, after_seconds: float) -> bool:
    """Stop waiting for a result that has not come in `after_seconds` (as a queue timeout
    would). True if this call did it. Commits."""
    if request.state != InitiatorState.WAITING:
        return False
    if utcnow() - request.created_at < timedelta(seconds=after_seconds):
        return False
    handler = HANDLERS[request.kind]
    outcome = handler.timed_out()
    done = _settle_request(
        request.id, (InitiatorState.WAITING,), state=InitiatorState.TIMED_OUT, outcome=outcome
    )
    if done:
        handler.settled(request.id, outcome)
    db.session.commit()
    db.session.refresh(request)
    return done


def store(secret: str, endpoint: str, body: bytes, *, source: str | None, size: int,
          too_large: bool) -> InitiatorResult:  # fmt: skip
    """Commit the body as it arrived (and the request its secret names, if any) first."""
    request_id = db.session.scalar(
        select(InitiatorRequest.id).where(InitiatorRequest.url_secret == secret[:SECRET_MAX])
    )
    disposition = "too_large" if too_large else ("pending" if request_id else "unknown_url")
    record = InitiatorResult(
        request_id=request_id,
        endpoint=endpoint,
        raw_body=bodies.as_stored(body),
        body_size=size,
        source_address=(source or "")[:64] or None,
        disposition=disposition,
    )
    db.session.add(record)
    db.session.commit()
    return record


def apply(record: InitiatorResult) -> str:
    """Apply a stored result or timeout once; returns its disposition. Commits."""
    if record.disposition != "pending":
        return record.disposition
    request = db.session.get(InitiatorRequest, record.request_id)
    handler = HANDLERS.get(request.kind)
    if handler is None:
        return _done(record, "malformed")
    if record.endpoint == TIMEOUT:
        outcome = handler.timed_out()
        won = _settle_request(
            request.id, (InitiatorState.WAITING,), state=InitiatorState.TIMED_OUT, outcome=outcome
        )
        return _finish(record, handler, outcome if won else None)
    body = bodies.json_object(record.raw_body)
    try:
        result = read_result(body) if body is not None else None
    except MalformedResult:
        result = None
    if result is None:
        return _done(record, "malformed")
    if not _same_conversation(request, result):
        return _done(record, "mismatch")
    outcome = handler.outcome(result, _ours(request.bar_id), request.subject)
    if outcome is None:
        return _done(record, "mismatch")
    won = _settle_request(
        request.id,
        ANSWERABLE,
        state=InitiatorState.ANSWERED,
        result_code=result.result_code,
        result_desc=result.result_desc,
        parameters=_with_transaction_id(result),
        outcome=outcome,
        originator_conversation_id=request.originator_conversation_id
        or result.originator_conversation_id,
        conversation_id=request.conversation_id or result.conversation_id,
    )
    if won and result.result_code in transaction_status.CREDENTIAL_CODES:
        initiator_credentials.mark_refused(request.bar_id)
    return _finish(record, handler, outcome if won else None)


def _with_transaction_id(result) -> dict:
    """The parameters, and the envelope's own TransactionID (a reversal's M-Pesa receipt)."""
    if not result.transaction_id or "TransactionID" in result.parameters:
        return result.parameters
    return {**result.parameters, "TransactionID": result.transaction_id}


def _same_conversation(request: InitiatorRequest, result) -> bool:
    """The result names the conversation Daraja gave the request (when both are known)."""
    pairs = (
        (request.conversation_id, result.conversation_id),
        (request.originator_conversation_id, result.originator_conversation_id),
    )
    return all(not ours or not theirs or ours == theirs for ours, theirs in pairs)


def _ours(bar_id: int) -> set[str]:
    cred = db.session.scalar(select(MpesaCredential).where(MpesaCredential.bar_id == bar_id))
    return {n for n in (cred.shortcode, cred.till_number) if n} if cred else set()


def _settle_request(request_id: int, allowed: tuple[str, ...], **values) -> bool:
    """One conditional UPDATE: only a request still in `allowed` moves. Does not commit."""
    done = db.session.execute(
        update(InitiatorRequest)
        .where(InitiatorRequest.id == request_id, InitiatorRequest.state.in_(allowed))
        .values(answered_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return done == 1


def _finish(record: InitiatorResult, handler: ModuleType, outcome: str | None) -> str:
    if outcome is not None:
        handler.settled(record.request_id, outcome)
    return _done(record, "applied" if outcome is not None else "duplicate")


def _done(record: InitiatorResult, disposition: str) -> str:
    record.disposition = disposition
    db.session.commit()
    return disposition
