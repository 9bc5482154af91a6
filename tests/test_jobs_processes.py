"""Two scheduler processes racing the recover job on one database (PostgreSQL in CI).

They never query the same payment twice in one tick and never apply anything twice: the
job lease picks one runner, and even without it (both calling the job body) each payment is
claimed by exactly one process with a conditional update.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, Payment, utcnow
from app.payments.push import PushRequest, start_push

ROOT = Path(__file__).resolve().parent.parent

RACE = """
import sys, time
from datetime import datetime
from app import create_app
from app.payments import recovery
from app import jobs
mode, start_at, now = sys.argv[1], float(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
app = create_app()
with app.app_context():
    time.sleep(max(0.0, start_at - time.time()))
    result = jobs.run("recover", now=now) if mode == "lease" else recovery.recover_due(now=now)
    print("RESULT", result)
"""


@pytest.fixture
def many_sent(factory, bar, live, sim_state):
    factory.live_credentials(bar)
    sim_state.set_faults(callback_lost=True)
    # (1037 is not in the list: it waits minutes for a second query, test_unconfirmed.py.)
    coded = [f"2547110{code:05d}" for code in (1, 17, 1001, 1019, 1025, 1032, 2001, 8006)]
    phones = coded + [f"2547083741{n:02d}" for n in range(12)]  # any other number pays
    for n, phone in enumerate(phones):
        start_push(
            bar,
            PushRequest(
                phone=phone,
                amount=10 + n,
                purpose="api",
                account_reference=f"R{n}",
                description="Bar tab",
            ),
        )
    db.session.commit()
    return len(phones)


def race(mode: str, test_config, database_url: str, daraja_url: str) -> list[str]:
    env = {
        **os.environ,
        "FLASK_APP": "wsgi.py",
        "DATABASE_URL": database_url,
        "PESATAB_ENCRYPTION_KEYS": test_config["PESATAB_ENCRYPTION_KEYS"],
        "SECRET_KEY": test_config["SECRET_KEY"],
        "DARAJA_BASE_URL": daraja_url,
        "DARAJA_SIMULATOR": "0",
        "SCHEDULER_ENABLED": "0",
    }
    start_at = time.time() + 3.0  # both processes are up by then; they start the tick together
    now = (utcnow() + timedelta(seconds=61)).isoformat()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, mode, str(start_at), now],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(out)
    return outputs


def checkouts_queried(sim_state) -> Counter:
    return Counter(
        e["body"]["CheckoutRequestID"]
        for e in sim_state.events("request")
        if e["path"].endswith("stkpushquery/v1/query")
    )


def settled_once(expected: int) -> None:
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Payment.id)).where(Payment.status == "sent")) == 0
    per_payment = Counter(
        d["payment_id"]
        for d in db.session.scalars(
            select(AuditEvent.details).where(AuditEvent.action.like("payment.%"))
        )
    )
    assert len(per_payment) == expected and set(per_payment.values()) == {1}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lease", "claims-only"])
def test_two_processes_never_query_or_apply_twice(
    mode, many_sent, sim_state, test_config, database_url, live
):
    outputs = race(mode, test_config, database_url, f"{live.url}/_daraja")
    queried = checkouts_queried(sim_state)
    assert len(queried) == many_sent and set(queried.values()) == {1}
    settled_once(many_sent)
    if mode == "lease":
        assert sum("RESULT None" in out for out in outputs) == 1  # the other saw the lease taken
