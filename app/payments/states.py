"""The payment state machine. Every change of status goes through `move`.

    created -> sent -> paid | failed | cancelled | expired
    created -> rejected                (Daraja refused: nothing reached the customer)
    created -> unknown                 (the push may have reached Daraja; settle by callback/query)
    unknown -> sent | paid | failed | cancelled | expired
    created | sent | unknown -> unknown  (`hold`: M-Pesa answered a failure that can still turn
                                        into money, 1037; final only once a query confirms it)

Final states do not move, with one exception: money wins. A success carrying a receipt for a
payment already failed, cancelled or expired moves it to paid and flags it ("late success"), and
so does a success for a payment held on such a failure. `paid` never moves. A payment M-Pesa has
answered about (a held one) never goes back to plain `sent`.

`move` is one conditional UPDATE ("... WHERE status IN (states that may move to new)"), so two
workers applying the same news at once cannot both win: exactly one sees a changed row.
"""

from __future__ import annotations

from sqlalchemy import Update, and_, bindparam, case, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from app.enums import FINAL, IN_FLIGHT, SETTLED_UNPAID, FlagReason
from app.enums import PaymentStatus as S
from app.extensions import db
from app.models import Payment, one_of, utcnow
from app.mpesa.catalogue import MAY_STILL_PAY

__all__ = [
    "ALLOWED",
    "FINAL",
    "IN_FLIGHT",
    "SETTLED_UNPAID",
    "hold",
    "move",
    "paid_without_push",
    "sources_of",
    "start",
]

ALLOWED: dict[S, set[S]] = {
    S.CREATED: {S.SENT, S.REJECTED, S.UNKNOWN, S.PAID, S.FAILED, S.CANCELLED, S.EXPIRED},
    S.SENT: {S.PAID, *SETTLED_UNPAID},
    S.UNKNOWN: {S.SENT, S.PAID, *SETTLED_UNPAID},
    S.FAILED: {S.PAID},
    S.CANCELLED: {S.PAID},
    S.EXPIRED: {S.PAID},
    S.REJECTED: set(),
    S.PAID: set(),
}


def start(**columns) -> Payment:
    """A new payment about to be pushed, in `created`. Not yet in the session: the caller adds
    it when its own checks (the tab's lock) are done."""
    return Payment(status=S.CREATED, **columns)


def paid_without_push(*, amount: int, receipt: str, paid_at, **columns) -> Payment:
    """A payment that starts as paid: money M-Pesa already took without a push (a C2B payment,
    or a statement line attached to a tab). It never moves: `paid` is final. Not yet in the
    session; the receipt's unique index refuses a receipt counted twice when it is flushed."""
    return Payment(
        status=S.PAID,
        amount=amount,
        paid_amount=amount,
        receipt=receipt,
        result_code="0",
        transaction_time=paid_at,
        settled_at=paid_at,
        **columns,
    )


def sources_of(new: S) -> list[S]:
    """The statuses from which a payment may move to `new`."""
    return sorted(s for s, targets in ALLOWED.items() if new in targets)


def move(payment: Payment, new: S, **values) -> bool:
    """Move `payment` to `new` (plus column `values`) if the machine allows it from its
    current status in the database. Returns True when this call made the change.

    A receipt is written only if no other payment holds it (checked in the same UPDATE; the
    unique index backs it up), so a False for a move to paid may also mean "receipt taken".
    The UPDATE returns the row as it wrote it, and `payment` is refreshed from that (no
    reload); when nothing changed, `payment` is expired so its next read shows the row as
    it is now."""
    return _apply(payment, new, tuple(sources_of(new)), values)


def hold(payment: Payment, **values) -> bool:
    """Keep an in-flight payment (created, sent or unknown) waiting as `unknown` with `values`:
    M-Pesa answered a failure that can still turn into money. False if it settled meanwhile."""
    return _apply(payment, S.UNKNOWN, IN_FLIGHT, values)


def _apply(payment: Payment, new: S, sources: tuple[S, ...], values: dict) -> bool:
    now = utcnow()
    values = {"status": S(new), "updated_at": now, **values}
    if new == S.SENT:
        values.setdefault("sent_at", now)
    if new in FINAL:
        values.setdefault("settled_at", now)
        values.setdefault("inflight_key", None)
    params = {f"v_{name}": value for name, value in values.items()}
    params["payment_id"] = payment.id
    row = db.session.execute(_statement(new, tuple(sorted(values)), sources), params).one_or_none()
    if row is None:
        db.session.expire(payment)
        return False
    for key, value in zip(_ATTRIBUTES, row, strict=True):
        set_committed_value(payment, key, value)
    return True


_table = Payment.__table__
_COLUMNS = tuple(_table.c)  # what the UPDATE returns, and the attribute each refreshes
_ATTRIBUTES = tuple(Payment.__mapper__.get_property_by_column(column).key for column in _COLUMNS)
_OTHER = _table.alias("other_payment")
_statements: dict[tuple[S, tuple[str, ...], tuple[S, ...]], Update] = {}


def _statement(new: S, columns: tuple[str, ...], sources: tuple[S, ...]) -> Update:
    """The conditional UPDATE for a move to `new` from `sources` setting `columns`, every value
    a bound parameter: built (with its cache key) once per shape rather than on every move."""
    statement = _statements.get((new, columns, sources))
    if statement is not None:
        return statement
    values = {name: bindparam(f"v_{name}", type_=_table.c[name].type) for name in columns}
    statement = update(_table).where(
        _table.c.id == bindparam("payment_id"), one_of(_table.c.status, sources)
    )
    if new == S.SENT:
        statement = statement.where(_table.c.result_code.is_(None))  # M-Pesa has not answered yet
    if new == S.UNKNOWN and "result_code" in columns:
        # A hold: the same answer twice (two deliveries at once) holds the payment once.
        code = _table.c.result_code
        statement = statement.where(or_(code.is_(None), code != values["result_code"]))
    if new == S.PAID:
        # A late success outranks any flag the caller asked for (e.g. receipt_pending): after a
        # settled failure, or after one held for confirmation (SET reads the row as it was).
        held = and_(
            one_of(_table.c.status, IN_FLIGHT),
            one_of(_table.c.result_code, MAY_STILL_PAY),
        )
        late = or_(one_of(_table.c.status, SETTLED_UNPAID), held)
        values["flagged"] = case((late, True), else_=values.get("flagged", _table.c.flagged))
        values["flag_reason"] = case(
            (late, FlagReason.LATE_SUCCESS.value),
            else_=values.get("flag_reason", _table.c.flag_reason),
        )
    if "receipt" in columns:
        elsewhere = select(_OTHER.c.id).where(
            _OTHER.c.receipt == values["receipt"], _OTHER.c.id != bindparam("payment_id")
        )
        statement = statement.where(~elsewhere.exists())
    statement = statement.values(**values).returning(*_COLUMNS)
    _statements[(new, columns, sources)] = statement
    return statement
