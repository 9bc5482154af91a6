"""The 200-payment C2B run (issue 14): customers pay from the M-Pesa menu, confirmations are
repeated or lost, and every payment must land exactly once.

Two bars on the simulator over real HTTP: a PayBill bar with open tabs and a Till bar. The
payments are drawn from a seed: a PayBill account that is an open tab's code (`TAB<id>`, typed
in any case, with spaces), a PayBill account that is no tab (a name, a closed or unknown tab),
or a till (Buy Goods, no account). The simulator loses 10% of the confirmations and sends 20%
twice (`c2b_lost_rate`, `c2b_duplicate_rate`, `c2b_seed`); then the pull job asks Daraja's Pull
Transactions for both bars and finds the lost ones.

    .venv/bin/python -m bench.c2b_run [--payments 200] [--seed 14] [--rate 20]

runs it on a fresh SQLite database migrated with `flask db upgrade`'s code, served by a threaded
werkzeug server on 127.0.0.1 (the simulator mounted in the same app), and prints the figures.
`tests/test_c2b_run.py` runs the same `run()` against the test app and asserts on it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import func, select

from app import jobs
from app.enums import Purpose
from app.extensions import db
from app.models import Bar, C2BConfirmation, Payment
from app.payments import c2b, c2b_pull
from app.simulator import SANDBOX_SHORTCODE, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET, TILL_NUMBER

NOMINATED = "254722000111"
PAYER = "254708374149"
SHARES = (("tab", 0.45), ("unknown", 0.25), ("till", 0.30))


@dataclass
class Planned:
    """One customer's payment and what became of it at Safaricom."""

    kind: str  # tab, unknown, till
    amount: int
    account: str = ""
    tab_id: int | None = None
    receipt: str = ""
    lost: bool = False
    copies: int = 1

    @property
    def bar(self) -> str:
        return "till" if self.kind == "till" else "paybill"


@dataclass
class RunResult:
    planned: list[Planned]
    figures: dict = field(default_factory=dict)


def plan(rng: random.Random, n: int, tab_ids: list[int], closed_tab: int) -> list[Planned]:
    """`n` payments: the kind by SHARES, whole-shilling amounts, accounts as customers type."""
    made = []
    for _ in range(n):
        x, kind = rng.random(), "till"
        for name, share in SHARES:
            if x < share:
                kind = name
                break
            x -= share
        amount = rng.choice((50, 120, 300, 450, 800, 1500, 2750))
        if kind == "tab":
            tab_id = rng.choice(tab_ids)
            typed = rng.choice((f"TAB{tab_id}", f"tab{tab_id}", f"Tab {tab_id}", f"TAB00{tab_id}"))
            made.append(Planned(kind, amount, typed, tab_id))
        elif kind == "unknown":
            typed = rng.choice(("walk in", "Otieno", "TAB999999", f"TAB{closed_tab}", "", "bar"))
            made.append(Planned(kind, amount, typed))
        else:
            made.append(Planned(kind, amount))
    return made


def _token(base: str) -> str:
    return requests.get(
        f"{base}/oauth/v1/generate?grant_type=client_credentials",
        auth=(SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET),
        timeout=5,
    ).json()["access_token"]


def _pay(session: requests.Session, base: str, token: str, payment: Planned) -> None:
    till = payment.kind == "till"
    body = {
        "ShortCode": TILL_NUMBER if till else SANDBOX_SHORTCODE,
        "CommandID": "CustomerBuyGoodsOnline" if till else "CustomerPayBillOnline",
        "Amount": payment.amount,
        "Msisdn": PAYER,
        "BillRefNumber": "" if till else payment.account,
    }
    answer = session.post(
        f"{base}/mpesa/c2b/v1/simulate",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    if answer.status_code != 200:
        raise RuntimeError(f"simulate answered {answer.status_code}: {answer.text}")


def _callbacks_settled(expected: int, sim_state, timeout: float) -> int:
    """Wait until every confirmation the simulator sent was answered and applied."""
    deadline = time.monotonic() + timeout
    while True:
        delivered = len(sim_state.events("c2b_confirmation"))
        db.session.expire_all()
        rows = db.session.scalar(
            select(func.count(C2BConfirmation.id)).where(C2BConfirmation.source == "callback")
        )
        pending = db.session.scalar(
            select(func.count(C2BConfirmation.id)).where(C2BConfirmation.disposition == "pending")
        )
        if delivered >= expected and rows >= expected and pending == 0:
            return rows
        if time.monotonic() > deadline:
            raise RuntimeError(f"{rows} of {expected} confirmations stored ({pending} pending)")
        time.sleep(0.05)


def run(
    base_url: str,
    sim_state,
    paybill: Bar,
    till: Bar,
    tab_ids: list[int],
    closed_tab: int,
    *,
    payments: int = 200,
    seed: int = 14,
    lost: float = 0.10,
    duplicate: float = 0.20,
    page_size: int = 25,
    rate: float = 0.0,
) -> RunResult:
    """Register both bars (C2B URLs and Pull), make the payments, wait for the confirmations,
    run the pull job, and count. Needs an app context on the app served at `base_url`."""
    for bar in (paybill, till):
        c2b.register(bar)
        c2b_pull.register(bar, NOMINATED)
    sim_state.set_faults(
        c2b_lost_rate=lost, c2b_duplicate_rate=duplicate, c2b_seed=seed, pull_page_size=page_size
    )
    planned = plan(random.Random(seed), payments, tab_ids, closed_tab)
    daraja = f"{base_url}/_daraja"
    started = time.perf_counter()
    with requests.Session() as session:
        token = _token(daraja)
        for n, payment in enumerate(planned):
            if rate > 0:  # a steady flow instead of all at once
                time.sleep(max(0.0, started + n / rate - time.perf_counter()))
            _pay(session, daraja, token, payment)
    made = sim_state.events("c2b_payment")[-payments:]  # in the order they were paid
    for payment, event in zip(planned, made, strict=True):
        payment.receipt, payment.lost, payment.copies = (
            event["receipt"],
            event["lost"],
            event["copies"],
        )
    expected = sum(p.copies for p in planned)
    received = _callbacks_settled(expected, sim_state, timeout=60 + payments / 5)
    pull_started = time.perf_counter()
    pulled = jobs.run("pull")
    if pulled is None:
        raise RuntimeError("the pull job did not run (its lease is held elsewhere)")
    ended = time.perf_counter()
    figures = _figures(planned, received, pulled, sim_state)
    figures["wall_seconds"] = round(ended - started, 2)
    figures["pull_seconds"] = round(ended - pull_started, 3)
    return RunResult(planned, figures)


def _count(*where) -> int:
    return db.session.scalar(select(func.count(C2BConfirmation.id)).where(*where))


def _kes(*where) -> tuple[int, int]:
    count, total = db.session.execute(
        select(func.count(Payment.id), func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.purpose == Purpose.C2B, *where
        )
    ).one()
    return count, int(total)


def _figures(planned: list[Planned], received: int, pulled, sim_state) -> dict:
    db.session.expire_all()
    times = sorted(
        e["seconds"] * 1000 for e in sim_state.events("c2b_confirmation") if "seconds" in e
    )
    on_tabs, unclaimed = _kes(Payment.tab_id.is_not(None)), _kes(Payment.tab_id.is_(None))
    return {
        "payments": len(planned),
        "payments_kes": sum(p.amount for p in planned),
        "confirmations_lost_by_simulator": sum(p.lost for p in planned),
        "confirmations_sent_twice": sum(p.copies == 2 for p in planned),
        "confirmations_received": received,
        "applied_from_confirmations": _count(
            C2BConfirmation.source == "callback", C2BConfirmation.disposition == "applied"
        ),
        "duplicates_dropped": _count(C2BConfirmation.disposition == "duplicate"),
        "found_by_pull": _count(
            C2BConfirmation.source == "pull", C2BConfirmation.disposition == "applied"
        ),
        "pull_pages": pulled.pages,
        "pull_seen": pulled.seen,
        "landed_on_tabs": on_tabs[0],
        "landed_on_tabs_kes": on_tabs[1],
        "unclaimed": unclaimed[0],
        "unclaimed_kes": unclaimed[1],
        "payments_recorded": on_tabs[0] + unclaimed[0],
        "recorded_kes": on_tabs[1] + unclaimed[1],
        "confirmation_ms_median": round(statistics.median(times), 2) if times else None,
        "confirmation_ms_p99": round(_p99(times), 2) if times else None,
    }


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]


# -- standalone ------------------------------------------------------------------------------


def _setup(app) -> tuple[Bar, Bar, list[int], int]:
    """Migrate, then two live bars on the simulator's credentials and some tabs."""
    from flask_migrate import upgrade

    from app.models import Tab, utcnow
    from app.settings import vault
    from app.simulator import SANDBOX_PASSKEY, TILL_PASSKEY, TILL_STORE_NUMBER

    upgrade()
    bars = []
    for name, kind in (("Run PayBill Bar", "paybill"), ("Run Till Bar", "till")):
        bar = Bar(name=name, slug=Bar.unique_slug(name))
        db.session.add(bar)
        db.session.commit()
        vault.save(
            bar,
            vault.CredentialInput(
                environment="sandbox", kind=kind,
                shortcode=TILL_STORE_NUMBER if kind == "till" else SANDBOX_SHORTCODE,
                till_number=TILL_NUMBER if kind == "till" else None,
                consumer_key=SIM_CONSUMER_KEY, consumer_secret=SIM_CONSUMER_SECRET,
                passkey=TILL_PASSKEY if kind == "till" else SANDBOX_PASSKEY,
            ),
        )  # fmt: skip
        cred = vault.credential_for(bar)
        cred.verified_revision, cred.verified_at = cred.revision, utcnow()
        bar.setup_state = "live"
        bars.append(bar)
    tabs = [Tab(bar_id=bars[0].id, label=f"Table {n}", status="open") for n in range(1, 11)]
    closed = Tab(bar_id=bars[0].id, label="Closed", status="settled", closed_at=utcnow())
    db.session.add_all([*tabs, closed])
    db.session.commit()
    return bars[0], bars[1], [t.id for t in tabs], closed.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.c2b_run", description=__doc__)
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="payments per second (default: flat out)"
    )
    args = parser.parse_args(argv)
    from app import create_app
    from app.crypto import generate_key
    from app.simulator import INSTANT_TIMING, LiveServer, SimulatorState

    with tempfile.TemporaryDirectory() as folder:
        state = SimulatorState(**INSTANT_TIMING)
        app = create_app(
            {
                "SECRET_KEY": "c2b-run-" + "x" * 40,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(folder) / 'run.sqlite3'}",
                "PESATAB_ENCRYPTION_KEYS": generate_key("krun"),
                "RATELIMIT_STORAGE_URI": "memory://",
                "SCHEDULER_ENABLED": False,
                "DARAJA_SIMULATOR": True,
                "DARAJA_SIM_STATE": state,
                "DARAJA_SIM_SECRET": "c2b-run-simulator-secret-0123456789",
            }
        )
        with app.app_context(), LiveServer(app) as server:
            app.config["PUBLIC_BASE_URL"] = server.url
            paybill, till, tab_ids, closed = _setup(app)
            result = run(
                server.url, state, paybill, till, tab_ids, closed,
                payments=args.payments, seed=args.seed, rate=args.rate,
            )  # fmt: skip
            state.close()
            db.session.remove()
            db.engine.dispose()
    print(json.dumps(result.figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
