"""Daraja's Dynamic QR, as the simulator plays it: `POST /mpesa/qrcode/v1/generate` makes a
real PNG (segno) of a payload that says what to pay, and the control API's "scan" pays it as a
customer's phone would: a C2B menu payment to the CPI with RefNo as the account, asked at the
validation URL first where validation is on, then confirmed to the shortcode's URL.

The payload is the simulator's own (Safaricom's is not public):
`PESATAB-SIM-QR;TrxCode=PB;CPI=174379;Amount=800;RefNo=TAB7;MerchantName=Kwa Mama Pub`.
The answer's shape follows the team's Daraja notes; the sample there shows a ResponseCode like
`AG_20191219_000043fdf61864fe9ff5`, which is what we send.

    POST /_control/qr-scan {"payload": "PESATAB-SIM-QR;...", "msisdn": "254708374149"}
"""

from __future__ import annotations

import base64
import io
import secrets
import time

import segno
from flask import Blueprint, Response, request

from app.simulator import c2b, errors, validation
from app.simulator.errors import json_response
from app.simulator.models import PAYBILL
from app.simulator.state import SimulatorState

PREFIX = "PESATAB-SIM-QR"
COMMANDS = {"PB": "CustomerPayBillOnline", "BG": "CustomerBuyGoodsOnline"}
FIELDS = ("TrxCode", "CPI", "Amount", "RefNo", "MerchantName")
DEFAULT_PHONE = "254708374149"


def register(bp: Blueprint, state: SimulatorState, bind) -> None:
    bp.add_url_rule(
        "/mpesa/qrcode/v1/generate", "qr_generate", bind(generate, state), methods=["POST"]
    )


def payload_text(fields: dict[str, str]) -> str:
    """What the QR encodes (`;` and `=` taken out of the values, so it parses back)."""
    clean = {k: str(fields[k]).replace(";", " ").replace("=", " ") for k in FIELDS}
    return ";".join([PREFIX, *(f"{k}={clean[k]}" for k in FIELDS)])


def read_payload(text: str) -> dict[str, str] | None:
    """The fields of a payload this simulator made, or None."""
    parts = str(text).split(";")
    if parts[0] != PREFIX:
        return None
    fields = dict(part.partition("=")[::2] for part in parts[1:])
    return fields if all(k in fields for k in FIELDS) else None


def png_for(payload: str, size: int) -> bytes:
    """A real PNG of the payload, about `size` pixels wide."""
    code = segno.make(payload, error="m")
    width = code.symbol_size(scale=1, border=4)[0]
    out = io.BytesIO()
    code.save(out, kind="png", scale=max(1, size // width), border=4)
    return out.getvalue()


def generate(state: SimulatorState) -> Response:
    """`POST /mpesa/qrcode/v1/generate`: a PNG asking Amount for RefNo to the CPI."""
    validation.check_gateway(state, request)
    body = validation.read_json(request)
    fields = {k: str(body.get(k) if body.get(k) is not None else "").strip() for k in FIELDS}
    if fields["TrxCode"] not in COMMANDS:
        raise errors.bad_request("TrxCode")
    if not _payable(state, fields["TrxCode"], fields["CPI"]):
        raise errors.bad_request("CPI")
    if not fields["Amount"].isdigit() or int(fields["Amount"]) < 1:
        raise errors.bad_request("Amount")
    for key in ("RefNo", "MerchantName"):
        if not fields[key]:
            raise errors.bad_request(key)
    size = str(body.get("Size") or "300")
    if not size.isdigit() or not 100 <= int(size) <= 1000:
        raise errors.bad_request("Size")
    payload = payload_text(fields)
    request_id = f"{secrets.randbelow(10**5)}-{secrets.randbelow(10**8)}-1"
    state.add_event("qr_generated", request_id=request_id, payload=payload)
    return json_response(
        {
            "ResponseCode": f"AG_{time.strftime('%Y%m%d')}_{secrets.token_hex(10)}",
            "RequestID": request_id,
            "ResponseDescription": "QR Code Successfully Generated.",
            "QRCode": base64.b64encode(png_for(payload, int(size))).decode(),
        }
    )


def _payable(state: SimulatorState, trx_code: str, cpi: str) -> bool:
    if not cpi.isdigit():
        return False
    if trx_code == "BG":  # a till number: it pays into its store
        return state.store_of(cpi) != cpi
    shortcode = state.shortcode(cpi)
    return shortcode is not None and shortcode.kind == PAYBILL


def scan(state: SimulatorState) -> Response:
    """Control: a customer scans a QR (its payload text) and pays it with their PIN."""
    body = request.get_json(silent=True)
    fields = read_payload(body.get("payload", "")) if isinstance(body, dict) else None
    if fields is None or fields["TrxCode"] not in COMMANDS or not fields["Amount"].isdigit():
        return json_response({"error": 'send {"payload": <a QR this simulator made>}'}, 400)
    phone = str(body.get("msisdn") or DEFAULT_PHONE)
    if not validation.PHONE_RE.fullmatch(phone):
        return json_response({"error": "msisdn must look like 2547XXXXXXXX"}, 400)
    cpi = fields["CPI"]
    urls = state.c2b_urls(state.store_of(cpi))
    if urls is None:
        return json_response({"error": "No ConfirmationURL registered for this ShortCode"}, 400)
    command = COMMANDS[fields["TrxCode"]]
    receipt = c2b.pay_from_menu(
        state, cpi, command, int(fields["Amount"]), phone, {"BillRefNumber": fields["RefNo"]}, urls
    )
    state.add_event("qr_scanned", receipt=receipt, paid=receipt is not None, cpi=cpi)
    return json_response({"money_moved": receipt is not None, "receipt": receipt})
