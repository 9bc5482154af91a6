"""The pay-by-scan QR on a tab's bill: Daraja's Dynamic QR for the tab's balance.

PayBill bars get TrxCode "PB" with the tab's code (TAB42) as the account, so a scan-and-pay
arrives as a C2B confirmation that lands on the tab by itself (app/payments/c2b.py); Till bars
get "BG" to the till number (the customer's app carries the RefNo as the account too). No QR
when the balance is 0 or the bar is not live. Each image is kept per (bar, tab, amount, where
it pays) for a while, so reloading the page does not ask Daraja again; a failure is kept for a
short while too, and the page says "QR not available right now" instead.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from flask import current_app

from app.models import Bar, Tab
from app.mpesa import DarajaError, InvalidRequest
from app.payments.daraja import client_for
from app.settings import vault

CACHE = "pesatab_bill_qr"
KEEP_SECONDS = 600.0  # an image for the same balance
KEEP_FAILURE_SECONDS = 30.0  # do not ask a failing Daraja on every reload
MAX_ENTRIES = 512


@dataclass(frozen=True)
class BillQr:
    """What the bill shows: the image (a data: URI), or nothing and whether it failed."""

    amount: int
    data_uri: str | None = None
    failed: bool = False


class _Cache:
    """A small per-process LRU with expiry, safe across request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, tuple[float, BillQr]] = OrderedDict()

    def get(self, key: tuple) -> BillQr | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] < time.monotonic():
                self._items.pop(key, None)
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: tuple, value: BillQr, seconds: float) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + seconds, value)
            self._items.move_to_end(key)
            while len(self._items) > MAX_ENTRIES:
                self._items.popitem(last=False)


def _cache() -> _Cache:
    return current_app.extensions.setdefault(CACHE, _Cache())


def tab_code(tab: Tab) -> str:
    """The account a customer types (or a QR carries) for this tab."""
    return f"TAB{tab.id}"


def qr_for(bar: Bar, tab: Tab, balance: int) -> BillQr | None:
    """The tab's QR for `balance`, from the cache or Daraja; None when there is nothing to ask
    (balance 0, tab not open, bar not live, no credentials)."""
    if balance < 1 or tab.status != "open" or bar.setup_state != "live":
        return None
    cred = vault.credential_for(bar)
    if cred is None:
        return None
    till = cred.till_number
    trx_code, cpi = ("BG", till) if till else ("PB", cred.shortcode)
    key = (bar.id, tab.id, balance, trx_code, cpi, cred.revision)
    found = _cache().get(key)
    if found is not None:
        return found
    made = _generate(bar, tab, cred, balance, trx_code, cpi)
    _cache().put(key, made, KEEP_FAILURE_SECONDS if made.failed else KEEP_SECONDS)
    return made


def _generate(bar, tab, cred, balance: int, trx_code: str, cpi: str) -> BillQr:
    try:
        creds = vault.open_credentials(cred)
        image = client_for(creds.environment, max_retries=0).qr_generate(
            creds,
            merchant_name=bar.name,
            ref_no=tab_code(tab),
            amount=balance,
            trx_code=trx_code,
            cpi=cpi,
        )
    except (DarajaError, InvalidRequest, vault.CredentialsUnavailable) as err:
        current_app.logger.warning("Bill QR for tab %s not made: %s", tab.id, err)
        return BillQr(balance, failed=True)
    return BillQr(balance, data_uri=image.data_uri)
