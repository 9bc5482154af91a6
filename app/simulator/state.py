"""The simulator's memory: apps, shortcodes, tokens, transactions, faults and the record.

One lock guards everything, so the Flask request threads and the callback threads can share one
`SimulatorState`. Tests read the truth (`transactions()`) and the record (`events()`) from here,
and wait for callbacks with `wait_for_callbacks` instead of sleeping.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from app.simulator import ids
from app.simulator.faults import COUNTERS, Faults
from app.simulator.models import PAYBILL, TILL, App, Shortcode, Transaction

# The public Daraja sandbox PayBill (published by Safaricom).
SANDBOX_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
# A simulator-only Till set-up: store number (BusinessShortCode) and one till (PartyB).
TILL_STORE_NUMBER = "174380"
TILL_NUMBER = "5123456"
TILL_PASSKEY = "5f1c0a3e7d9b24c68e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"
# The simulator's own app credentials (not secrets: they only open this simulator).
SIM_CONSUMER_KEY = "SimConsumerKey0001PesaTabDemo"  # letters and digits, as Daraja issues them
SIM_CONSUMER_SECRET = "SimConsumerSecret0001PesaTab"  # noqa: S105 -- opens only this simulator
TOKEN_LIFETIME = 3600.0
CALLBACK = "callback"


class SimulatorState:
    """Thread-safe in-memory state of one simulated Daraja."""

    def __init__(self, *, clock: Callable[[], float] = time.time, **faults: Any) -> None:
        """`faults` set the baseline that `clear_faults()` and `reset()` return to."""
        self.clock = clock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._baseline = Faults(**faults)
        self._apps: dict[str, App] = {}
        self._shortcodes: dict[str, Shortcode] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.record: list[dict[str, Any]] = []
        self._clear_runtime()
        self._add_defaults()

    def _add_defaults(self) -> None:
        self.add_app(SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET)
        self.add_shortcode(SANDBOX_SHORTCODE, SANDBOX_PASSKEY)
        self.add_shortcode(TILL_STORE_NUMBER, TILL_PASSKEY, kind=TILL, tills=(TILL_NUMBER,))

    def _clear_runtime(self) -> None:
        self.faults = self._baseline
        self._tokens: dict[str, float] = {}
        self._transactions: dict[str, Transaction] = {}
        self._receipts: set[str] = set()
        self._c2b: dict[str, tuple[str, str]] = {}  # shortcode -> (confirmation, validation)
        self._c2b_validation: dict[str, dict[str, Any]] = {}  # app/simulator/c2b_validate.py
        self._menu_payments: list[dict[str, Any]] = []  # every C2B payment, lost ones too
        self._pull: dict[str, tuple[str, str]] = {}  # shortcode -> (nominated number, URL)
        self._callback_attempts = 0
        self.record.clear()

    def reset(self) -> None:
        """Forget tokens, transactions and the record; faults back to the baseline.

        Registered apps and shortcodes stay. Callbacks not yet sent are cancelled.
        """
        with self._lock:
            self._stop.set()
            self._stop = threading.Event()
            self._clear_runtime()
            self._changed.notify_all()

    def restart(self) -> None:
        """Back to the state as constructed: callback threads stopped, only the default apps
        and shortcodes registered, no tokens, transactions or record, the baseline faults.
        One state can then serve one test after another (the suite's shared app)."""
        self.close()
        with self._lock:
            self._apps.clear()
            self._shortcodes.clear()
            self._add_defaults()
            self._clear_runtime()
            self._changed.notify_all()

    # Faults ------------------------------------------------------------------------------

    def set_faults(self, **changes: Any) -> Faults:
        """Change some faults/settings (unknown names raise TypeError, bad values ValueError)."""
        with self._lock:
            self.faults = dataclasses.replace(self.faults, **changes)
            return self.faults

    def clear_faults(self) -> Faults:
        """Back to the baseline faults given to the constructor."""
        with self._lock:
            self.faults = self._baseline
            return self.faults

    def consume(self, counter: str) -> bool:
        """Use one unit of a counting fault; True if it was active."""
        if counter not in COUNTERS:
            raise ValueError(f"not a counting fault: {counter}")
        with self._lock:
            left = getattr(self.faults, counter)
            if left > 0:
                self.faults = dataclasses.replace(self.faults, **{counter: left - 1})
            return left > 0

    # Apps, shortcodes and tokens --------------------------------------------------------

    def add_app(self, key: str, secret: str, products: Iterable[str] = ("stk",)) -> App:
        """Register a Daraja app with its enabled API products."""
        app = App(key, secret, frozenset(products))
        with self._lock:
            self._apps[key] = app
        return app

    def app(self, key: str) -> App | None:
        """The app with this consumer key, if any."""
        with self._lock:
            return self._apps.get(key)

    def add_shortcode(
        self, shortcode: str, passkey: str, kind: str = PAYBILL, tills: Iterable[str] = ()
    ) -> Shortcode:
        """Register a PayBill, or a Till store number with its till numbers."""
        record = Shortcode(str(shortcode), passkey, kind, frozenset(str(t) for t in tills))
        with self._lock:
            self._shortcodes[record.number] = record
        return record

    def shortcode(self, number: str) -> Shortcode | None:
        """The shortcode record, if this number is known."""
        with self._lock:
            return self._shortcodes.get(number)

    def register_c2b(self, shortcode: str, confirmation_url: str, validation_url: str) -> None:
        """Where this shortcode's C2B confirmations (and validations) go."""
        with self._lock:
            self._c2b[shortcode] = (confirmation_url, validation_url)

    def c2b_urls(self, shortcode: str) -> tuple[str, str] | None:
        with self._lock:
            return self._c2b.get(shortcode)

    def c2b_validation(self, shortcode: str) -> dict[str, Any]:
        """The shortcode's validation settings (enabled, timeout, response_type), changed in
        place by app/simulator/c2b_validate.py; forgotten by `reset()`."""
        with self._lock:
            return self._c2b_validation.setdefault(shortcode, {})

    def store_of(self, number: str) -> str:
        """The shortcode a number pays into: a till's store number, else the number itself."""
        with self._lock:
            for shortcode in self._shortcodes.values():
                if number in shortcode.tills:
                    return shortcode.number
            return number

    def add_menu_payment(self, payment: dict[str, Any]) -> int:
        """Remember a payment made from the M-Pesa menu (what Pull answers); its index."""
        with self._lock:
            self._menu_payments.append(dict(payment))
            return len(self._menu_payments) - 1

    def menu_payments(self) -> list[dict[str, Any]]:
        """Every menu payment, oldest first (copies)."""
        with self._lock:
            return [dict(p) for p in self._menu_payments]

    def register_pull(self, shortcode: str, nominated: str, callback_url: str) -> None:
        """The shortcode may now be asked for its transactions (Pull Transactions)."""
        with self._lock:
            self._pull[shortcode] = (nominated, callback_url)

    def pull_registration(self, shortcode: str) -> tuple[str, str] | None:
        with self._lock:
            return self._pull.get(shortcode)

    def issue_token(self) -> str:
        """A new bearer token, living `token_ttl` seconds (an hour unless a fault says less)."""
        with self._lock:
            ttl = self.faults.token_ttl
            token = ids.new_access_token()
            self._tokens[token] = self.clock() + (TOKEN_LIFETIME if ttl is None else ttl)
            return token

    def token_valid(self, token: str) -> bool:
        """True for a token this simulator issued that has not expired or been revoked."""
        with self._lock:
            expiry = self._tokens.get(token)
            return expiry is not None and self.clock() < expiry

    def revoke_tokens(self) -> None:
        """Fault: every token issued so far stops working at once."""
        with self._lock:
            self._tokens.clear()

    # Transactions -------------------------------------------------------------------------

    def new_checkout_request_id(self) -> str:
        """A CheckoutRequestID no transaction has used."""
        with self._lock:
            while (checkout_id := ids.new_checkout_request_id(self.clock())) in self._transactions:
                pass
            return checkout_id

    def new_receipt(self) -> str:
        """A receipt number never issued before (reserved at once)."""
        with self._lock:
            while (receipt := ids.new_receipt()) in self._receipts:
                pass
            self._receipts.add(receipt)
            return receipt

    def add_transaction(self, txn: Transaction) -> None:
        """Remember an accepted push."""
        with self._lock:
            self._transactions[txn.checkout_request_id] = txn

    def transactions(self) -> list[Transaction]:
        """Every accepted push, oldest first."""
        with self._lock:
            return list(self._transactions.values())

    def transaction(self, checkout_id: str) -> Transaction | None:
        """The accepted push with this CheckoutRequestID, if any."""
        with self._lock:
            return self._transactions.get(checkout_id)

    # The record -------------------------------------------------------------------------

    def add_event(self, kind: str, **data: Any) -> None:
        """Append to the record: `request`, `callback` (a delivery attempt), `callback_dropped`…"""
        with self._lock:
            self.record.append({"kind": kind, "at": self.clock(), **data})
            if kind == CALLBACK:
                self._callback_attempts += 1
                self._changed.notify_all()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Copies of the recorded events, all or those of one kind."""
        with self._lock:
            return [copy.deepcopy(e) for e in self.record if kind is None or e["kind"] == kind]

    def wait_for_callbacks(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least `n` callback deliveries were attempted; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._callback_attempts >= n, timeout)

    # Background threads ---------------------------------------------------------------------

    @property
    def stop_event(self) -> threading.Event:
        """Set when `reset()` or `close()` cancels the work started before it."""
        with self._lock:
            return self._stop

    def start_thread(self, target: Callable[[], None], name: str) -> None:
        """Run `target` in a tracked daemon thread (joined by `close()`)."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel pending callbacks and wait for the callback threads to finish.

        Transactions and the record stay readable, and the state stays usable.
        """
        with self._lock:
            self._stop.set()
            self._stop = threading.Event()
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout)

    def __enter__(self) -> SimulatorState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
