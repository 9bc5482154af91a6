"""Daraja's Dynamic QR: the request body and reading the answer (no Flask, no database).

`POST /mpesa/qrcode/v1/generate` `{MerchantName, RefNo, Amount, TrxCode, CPI, Size}` answers
`{ResponseCode, RequestID, ResponseDescription, QRCode}`, QRCode a base64 PNG. TrxCode "BG" is
Buy Goods (CPI: the till number), "PB" PayBill (CPI: the PayBill number; RefNo is the account
the customer's app fills in). Paying by scan arrives as a C2B confirmation with RefNo as the
account. Daraja's page gives no field lengths; the limits below are our own, conservative.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from app.mpesa.errors import DarajaError, InvalidRequest

PATH = "/mpesa/qrcode/v1/generate"
TRX_CODES = ("BG", "PB")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_MERCHANT_NAME = 40
MAX_REF_NO = 12  # as an STK AccountReference: a tab's code fits


@dataclass(frozen=True)
class QrCode:
    """A generated QR: the PNG's bytes and Daraja's request id."""

    png: bytes
    request_id: str

    @property
    def data_uri(self) -> str:
        """The image inline, for an `<img src>`."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


def body(
    *, merchant_name: str, ref_no: str, amount: int, trx_code: str, cpi: str, size: int = 300
) -> dict[str, Any]:
    """The generate request; InvalidRequest (before anything is sent) when an input is wrong."""
    if trx_code not in TRX_CODES:
        raise InvalidRequest("TrxCode must be BG (till) or PB (PayBill).", field="trx_code")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        raise InvalidRequest("The QR's amount must be a whole number of KES, 1 or more.",
                             field="amount")  # fmt: skip
    if not str(cpi).isdigit():
        raise InvalidRequest("CPI must be the till or PayBill number.", field="cpi")
    ref = "".join(ch for ch in ref_no if ch.isascii() and ch.isalnum())[:MAX_REF_NO]
    if not ref:
        raise InvalidRequest("RefNo must have letters or digits.", field="ref_no")
    name = " ".join(merchant_name.split())[:MAX_MERCHANT_NAME] or "PesaTab"
    return {
        "MerchantName": name,
        "RefNo": ref,
        "Amount": amount,
        "TrxCode": trx_code,
        "CPI": str(cpi),
        "Size": str(size),
    }


def read_answer(payload: dict[str, Any]) -> QrCode:
    """The PNG from a generate answer; DarajaError when it holds no PNG. The image decides, not
    ResponseCode: integrators report "0" as well as ids like "AG_20191219_…" for success."""
    try:
        png = base64.b64decode(str(payload.get("QRCode") or ""), validate=True)
    except (binascii.Error, ValueError):
        png = b""
    if not png.startswith(PNG_SIGNATURE):
        code = str(payload.get("ResponseCode") or payload.get("errorCode") or "").strip()
        message = payload.get("ResponseDescription") or payload.get("errorMessage")
        raise DarajaError(str(message or "Daraja's QR answer held no PNG image"),
                          http_status=200, error_code=code or None)  # fmt: skip
    return QrCode(png, str(payload.get("RequestID") or ""))


class QrCalls:
    """DarajaClient's Dynamic QR request (mixed into it): `_request` is its one transport."""

    def qr_generate(
        self,
        creds,
        *,
        merchant_name: str,
        ref_no: str,
        amount: int,
        trx_code: str,
        cpi: str,
        size: int = 300,
    ) -> QrCode:
        """A Dynamic QR asking `amount` for `ref_no` (PB: the PayBill `cpi`; BG: the till).
        Raises InvalidRequest before sending a bad request and DarajaError when Daraja refuses;
        safe to ask again (nothing is paid until someone scans it)."""
        fields = body(merchant_name=merchant_name, ref_no=ref_no, amount=amount,
                      trx_code=trx_code, cpi=cpi, size=size)  # fmt: skip
        return read_answer(self._request("POST", PATH, creds, fields, replay_safe=True))
