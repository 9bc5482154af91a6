"""1. Callback ingest: Safaricom's callbacks for payments in `sent`, plus 20% duplicates, at a
fixed rate and flat out, against a baseline that only stores the body.

Both servers run at once under the same gunicorn settings on the same database (the idle one
costs nothing), and the phases alternate baseline/app so drift on a shared machine hits both.
Bodies are built by the Daraja simulator's own callback builder; outcomes are mixed (85% paid,
10% cancelled, 5% insufficient balance). Afterwards every payment is checked against what its
callback said, and every callback against its stored event.

Also reported: the p99 at twice the fixed rate (400/s), the apply lag of each app phase
(from the event's `received_at` to its `processed_at`: how long after Safaricom called the
payment showed *Paid*, before the screen's next poll), and the SQL statements and commits one
callback costs (counted in-process through the app's own engine, after the run).

The app runs as production's settings say (CALLBACK_APPLY from the environment, else the
default), and beside it a second app server in the other mode (`app_inline` or
`app_background` in the JSON) runs the same phases on payments of its own, so the two modes
are measured side by side in one run; the targets are the first one's. Each app phase's CPU is
what its workers used during the phase: in background mode, applying the callbacks still
queued when the phase ends is not in it (the apply lag and "applied/s" show that part).
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections import Counter

from sqlalchemy import func, select

from bench import loadgen, seed, stack
from bench.report import run_phase
from bench.stats import ratio, target, timing

SCALES = {
    # payments per phase; fixed-rate phase = rate x seconds callbacks (duplicates included)
    "full": {
        "bars": 300,
        "rate": 200,
        "fixed_seconds": 20,
        "high_rate": 400,
        "high_seconds": 10,
        "flat_callbacks": 6000,
        "warmup": 300,
        "connections": 16,
    },
    "smoke": {
        "bars": 5,
        "rate": 50,
        "fixed_seconds": 2,
        "high_rate": 100,
        "high_seconds": 1,
        "flat_callbacks": 120,
        "warmup": 20,
        "connections": 4,
    },
}
DUPLICATE_SHARE = 0.2
OUTCOMES = ((0, 0.85), (1032, 0.10), (1, 0.05))  # result code, share
SHORTCODE = "174379"


def _outcome(rng: random.Random) -> int:
    x, total = rng.random(), 0.0
    for code, share in OUTCOMES:
        total += share
        if x < total:
            return code
    return 0


def _payments(rng: random.Random, bar_ids: list[int], n: int) -> list[dict]:
    """`n` payments in `sent`, each with the callback Daraja will send for it."""
    from app.simulator import ids
    from app.simulator.callbacks import callback_body
    from app.simulator.faults import Faults
    from app.simulator.models import Transaction
    from app.simulator.outcomes import callback_desc

    faults, now = Faults(), time.time()
    specs = []
    for _ in range(n):
        code = _outcome(rng)
        phone = f"2547{rng.randrange(20_000_000, 99_999_999)}"
        txn = Transaction(
            checkout_request_id=ids.new_checkout_request_id(now) + secrets.token_hex(3),
            merchant_request_id=ids.new_merchant_request_id(),
            shortcode=SHORTCODE,
            transaction_type="CustomerPayBillOnline",
            party_a=phone,
            party_b=SHORTCODE,
            phone=phone,
            amount=rng.randrange(50, 5000),
            account_reference="TAB",
            transaction_desc="Bar tab",
            callback_url="",
            result_code=code,
            result_desc=callback_desc(code),
            receipt=ids.new_receipt() if code == 0 else None,
            created_at=now,
            resolves_at=now,
            transaction_date=int(ids.eat_timestamp(now)),
        )
        specs.append(
            {
                "bar_id": rng.choice(bar_ids),
                "phone": phone,
                "amount": txn.amount,
                "callback_token": secrets.token_hex(20),
                "checkout_request_id": txn.checkout_request_id,
                "merchant_request_id": txn.merchant_request_id,
                "code": code,
                "receipt": txn.receipt,
                "body": json.dumps(callback_body(txn, faults)).encode(),
            }
        )
    return specs


def _stream(rng: random.Random, specs: list[dict]) -> list[dict]:
    """Each callback once, in a random order, and 20% of them again up to 200 callbacks later
    (about a second at 200/s: Daraja's resends come soon, sometimes while the first is applied)."""
    order = list(specs)
    rng.shuffle(order)
    again = {id(spec) for spec in rng.sample(order, round(len(order) * DUPLICATE_SHARE))}
    due: dict[int, list[dict]] = {}
    stream: list[dict] = []
    for i, spec in enumerate(order):
        stream.extend(due.pop(i, []))
        stream.append(spec)
        if id(spec) in again:
            due.setdefault(i + rng.randrange(1, 200), []).append(spec)
    for i in sorted(due):
        stream.extend(due[i])
    return stream


def _requests(port: int, stream: list[dict]) -> list[bytes]:
    headers = {"Content-Type": "application/json;charset=UTF-8", "Businessshortcode": SHORTCODE}
    return [
        loadgen.request_bytes(
            "POST", f"/hooks/stk/{s['callback_token']}", port, body=s["body"], headers=headers
        )
        for s in stream
    ]


def _split(total_callbacks: int) -> int:
    """How many payments make `total_callbacks` once their duplicates are added."""
    return max(1, round(total_callbacks / (1 + DUPLICATE_SHARE)))


def _expected_status(code: int) -> str:
    return "paid" if code == 0 else {1032: "cancelled", 1: "failed"}[code]


def _check_payments(specs: list[dict], callbacks_sent: int, duplicates: int) -> dict:
    """Every payment as its callback said, every callback stored once, nothing left pending."""
    from app.extensions import db
    from app.models import CallbackEvent, Payment

    by_token = {s["callback_token"]: s for s in specs}
    wrong, examples, seen = 0, [], 0
    rows = db.session.execute(
        select(
            Payment.callback_token,
            Payment.status,
            Payment.receipt,
            Payment.paid_amount,
            Payment.result_code,
            Payment.inflight_key,
        )
    )
    for token, status, receipt, paid_amount, code, inflight in rows:
        spec = by_token.get(token)
        if spec is None:
            continue
        seen += 1
        expected = _expected_status(spec["code"])
        good = status == expected and code == str(spec["code"]) and inflight is None
        if expected == "paid":
            good = good and receipt == spec["receipt"] and paid_amount == spec["amount"]
        if not good:
            wrong += 1
            if len(examples) < 5:
                examples.append({"token": token[:8], "status": status, "expected": expected})
    dispositions = Counter(
        dict(
            db.session.execute(
                select(CallbackEvent.disposition, func.count()).group_by(CallbackEvent.disposition)
            ).all()
        )
    )
    events = sum(dispositions.values())
    correct = (
        seen == len(specs)
        and wrong == 0
        and events == callbacks_sent
        and dispositions["applied"] == len(specs)
        and dispositions["duplicate"] == duplicates
    )
    return {
        "payments": len(specs),
        "payments_found": seen,
        "payments_wrong": wrong,
        "examples": examples,
        "events_stored": events,
        "callbacks_sent": callbacks_sent,
        "duplicates_sent": duplicates,
        "dispositions": dict(dispositions),
        "all_correct": correct,
    }


def _events_after(env: dict, event_id: int, wait_s: float = 120.0) -> tuple[dict, int]:
    """The apply lag of the events stored after `event_id` (waiting, boundedly, for any still
    pending: with CALLBACK_APPLY=background they are applied after the answer), and the last id."""
    from app.extensions import db
    from app.models import CallbackEvent

    with stack.app_context(env):
        newer = CallbackEvent.id > event_id
        deadline, pending = time.monotonic() + wait_s, None
        while time.monotonic() < deadline:
            pending = db.session.scalar(
                select(func.count()).where(newer, CallbackEvent.disposition == "pending")
            )
            db.session.rollback()
            if not pending:
                break
            time.sleep(0.1)
        rows = db.session.execute(
            select(CallbackEvent.id, CallbackEvent.received_at, CallbackEvent.processed_at).where(
                newer
            )
        ).all()
    lags = [(done - received).total_seconds() for _, received, done in rows if done is not None]
    done_at = [done for _, _, done in rows if done is not None]
    span = (max(done_at) - min(r for _, r, _ in rows)).total_seconds() if done_at else None
    figures = {
        **timing(lags),
        "pending_after_wait": pending or 0,
        "applied_per_s": round(len(lags) / span, 1) if span else None,
    }
    return figures, max((row[0] for row in rows), default=event_id)


def _statements_per_callback(env: dict, bar_id: int, n: int = 20) -> dict:
    """SQL statements and commits for a paid callback and for its duplicate, counted through the
    app's own engine in this process (what a worker runs, minus gunicorn): not noisy, unlike
    time."""
    from sqlalchemy import event as sa_event

    from app.extensions import db
    from app.payments import applier

    specs = [spec for spec in _payments(random.Random(9), [bar_id], 3 * n) if spec["code"] == 0][:n]
    headers = {"Content-Type": "application/json;charset=UTF-8", "Businessshortcode": SHORTCODE}
    counts: Counter = Counter()
    listeners = {
        "before_cursor_execute": lambda *a: counts.update(["statements"]),
        "commit": lambda *a: counts.update(["commits"]),
    }
    figures = {}
    with stack.app_context(env) as app:
        seed.sent_payments(specs)
        client = app.test_client()
        for label in ("paid", "duplicate"):
            for name, fn in listeners.items():
                sa_event.listen(db.engine, name, fn)
            try:
                for spec in specs:
                    client.post(
                        f"/hooks/stk/{spec['callback_token']}", data=spec["body"], headers=headers
                    )
                if app.config["CALLBACK_APPLY"] == "background":
                    applier.applier_for(app).wait(timeout=30)
            finally:
                for name, fn in listeners.items():
                    sa_event.remove(db.engine, name, fn)
            figures[label] = {key: round(value / len(specs), 2) for key, value in counts.items()}
            counts.clear()
        running = app.extensions.get(applier.EXTENSION)
        if running is not None:
            running.stop(timeout=30)
    return figures


def _baseline_table(url: str) -> None:
    from sqlalchemy import create_engine

    from bench.wsgi_baseline import metadata

    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()


def run(scale: str = "full") -> dict:
    s = SCALES[scale]
    rng = random.Random(8)
    with stack.database("callbacks") as url:
        env = stack.app_env(url)
        stack.migrate(env)
        _baseline_table(url)
        with stack.app_context(env) as app:
            bar_ids = seed.bars(s["bars"])
            fixed_total = s["rate"] * s["fixed_seconds"]
            sets = {
                "warmup": _payments(rng, bar_ids, s["warmup"]),
                "fixed": _payments(rng, bar_ids, _split(fixed_total)),
                "flat": _payments(rng, bar_ids, _split(s["flat_callbacks"])),
                # made last, so the other sets are the ones earlier runs sent
                "high": _payments(rng, bar_ids, _split(s["high_rate"] * s["high_seconds"])),
            }
            # The other mode's own payments, the same phases (each payment settles once).
            for name in ("warmup", "fixed", "high", "flat"):
                sets[f"{name}_alt"] = _payments(rng, bar_ids, len(sets[name]))
            seed.sent_payments([p for group in sets.values() for p in group])
            mode = app.config["CALLBACK_APPLY"]
        alt = ALTERNATIVE[mode]
        streams = {name: _stream(rng, specs) for name, specs in sets.items()}
        with (
            stack.Gunicorn("bench.wsgi_app:app", env) as app_server,
            stack.Gunicorn("bench.wsgi_app:app", {**env, "CALLBACK_APPLY": alt}) as alt_server,
            stack.Gunicorn("bench.wsgi_baseline:app", env) as base_server,
        ):
            servers = {"baseline": base_server, "app": app_server, f"app_{alt}": alt_server}
            phases = _run_phases(s, streams, servers, url, env)
        with stack.app_context(env):
            every = [p for group in sets.values() for p in group]
            sent = sum(len(v) for v in streams.values())
            check = _check_payments(every, sent, sent - len(every))
        statements = _statements_per_callback(env, bar_ids[0])
    return _figures(s, phases, check, statements, mode, alt)


ALTERNATIVE = {"background": "inline", "inline": "background"}


def _stream_for(streams: dict, name: str, label: str) -> list[dict]:
    """The baseline and the app share a stream (the baseline settles nothing); the other mode's
    server has its own payments."""
    return streams[f"{name}_alt"] if label.startswith("app_") else streams[name]


def _run_phases(s: dict, streams: dict, servers: dict, url: str, env: dict) -> dict:
    """Warm every server, then fixed rate, twice that rate, and flat out, each on every server
    in turn (baseline, app, the other mode; the order turns round each time, so drift on a
    shared machine does not always hit the same one). After each app phase, its apply lag
    (waiting for any callback still being applied before going on)."""
    phases, order = {}, list(servers)
    for label, server in servers.items():
        job = loadgen.Job(
            server.port,
            _requests(server.port, _stream_for(streams, "warmup", label)),
            connections=s["connections"],
            time_limit=60,
        )
        loadgen.run(job)
    _, last_event = _events_after(env, 0)
    # Twice the rate: where the p99 goes as the cores fill up (CPU is ~2 x 1,000 ms a second).
    plan = (
        ("fixed", s["rate"], s["fixed_seconds"] * 3 + 10),
        ("high", s["high_rate"], s["high_seconds"] * 3 + 10),
        ("flat", None, 120),
    )
    for name, rate, time_limit in plan:
        for label in order:
            server, stream = servers[label], _stream_for(streams, name, label)
            job = loadgen.Job(
                server.port,
                _requests(server.port, stream),
                offsets=loadgen.fixed_rate(len(stream), rate) if rate else None,
                connections=64 if rate else s["connections"],
                time_limit=time_limit,
            )
            phase = phases[f"{name}_{label}"] = run_phase(job, server, url)
            if label.startswith("app"):
                phase["apply_lag"], last_event = _events_after(env, last_event)
        order.reverse()
    return phases


def _figures(s: dict, phases: dict, check: dict, statements: dict, mode: str, alt: str) -> dict:
    fixed, flat = phases["fixed_app"], phases["flat_app"]
    base_fixed, base_flat = phases["fixed_baseline"], phases["flat_baseline"]
    high, base_high = phases["high_app"], phases["high_baseline"]
    tput_ratio = ratio(flat["throughput"], base_flat["throughput"])
    errors = sum(p["failed"] for p in phases.values())
    applied = flat["apply_lag"]["applied_per_s"]
    paid, duplicate = statements["paid"], statements["duplicate"]
    targets = [
        target(
            "flat-out callbacks/s vs baseline",
            flat["throughput"],
            "callbacks/s",
            ">= 0.7 x baseline",
            (tput_ratio or 0) >= 0.7,
            baseline=base_flat["throughput"],
            ratio_value=tput_ratio,
            note=f"acknowledged; CALLBACK_APPLY={mode}",
        ),
        target(
            f"p99 latency at {s['rate']}/s",
            fixed["latency"]["p99_ms"],
            "ms",
            "< 20 ms",
            (fixed["latency"]["p99_ms"] or 1e9) < 20,
            baseline=base_fixed["latency"]["p99_ms"],
            ratio_value=ratio(fixed["latency"]["p99_ms"], base_fixed["latency"]["p99_ms"]),
        ),
        target(
            f"p50 latency at {s['rate']}/s",
            fixed["latency"]["p50_ms"],
            "ms",
            "(reported)",
            True,
            baseline=base_fixed["latency"]["p50_ms"],
            ratio_value=ratio(fixed["latency"]["p50_ms"], base_fixed["latency"]["p50_ms"]),
        ),
        target(
            f"p99 latency at {s['high_rate']}/s",
            high["latency"]["p99_ms"],
            "ms",
            "(reported)",
            True,
            baseline=base_high["latency"]["p99_ms"],
            ratio_value=ratio(high["latency"]["p99_ms"], base_high["latency"]["p99_ms"]),
            note=f"p50 {high['latency']['p50_ms']} ms; apply lag p99 "
            f"{high['apply_lag']['p99_ms']} ms",
        ),
        target(
            "flat-out p99 latency",
            flat["latency"]["p99_ms"],
            "ms",
            "(reported)",
            True,
            baseline=base_flat["latency"]["p99_ms"],
            ratio_value=ratio(flat["latency"]["p99_ms"], base_flat["latency"]["p99_ms"]),
        ),
        target(
            "flat-out callbacks applied/s (end to end)",
            applied,
            "callbacks/s",
            "(reported)",
            True,
            baseline=base_flat["throughput"],
            ratio_value=ratio(applied, base_flat["throughput"]),
            note="from the first callback received to the last one applied",
        ),
        target(
            f"apply lag p99 at {s['rate']}/s (received to paid)",
            fixed["apply_lag"]["p99_ms"],
            "ms",
            "(reported)",
            True,
            note=f"p50 {fixed['apply_lag']['p50_ms']} ms",
        ),
        target(
            "flat-out apply lag p99",
            flat["apply_lag"]["p99_ms"],
            "ms",
            "(reported)",
            True,
            note=f"p50 {flat['apply_lag']['p50_ms']} ms, max {flat['apply_lag']['max_ms']} ms",
        ),
        target(
            "SQL statements per paid callback",
            paid.get("statements", 0),
            "statements",
            "(reported)",
            True,
            note=f"{paid.get('commits', 0)} commits; a duplicate: "
            f"{duplicate.get('statements', 0)} statements, "
            f"{duplicate.get('commits', 0)} commits; CALLBACK_APPLY={mode} (background: a "
            "batch shares its lock, audit and finish statements)",
        ),
        *_other_mode(s, phases, alt),
        target("HTTP errors (all phases)", errors, "requests", "0", errors == 0),
        target(
            "every payment correct afterwards",
            check["all_correct"],
            "",
            "yes",
            check["all_correct"],
            note=f"{check['payments']} payments, {check['events_stored']} events stored",
        ),
    ]
    return {
        "settings": {**s, "callback_apply": mode, "other_mode": alt},
        "phases": phases,
        "check": check,
        "statements_per_callback": statements,
        "targets": targets,
    }


def _other_mode(s: dict, phases: dict, alt: str) -> list[dict]:
    """The same figures for the other CALLBACK_APPLY mode, measured in the same run (reported:
    the targets are the default's)."""
    fixed, high, flat = (phases[f"{name}_app_{alt}"] for name in ("fixed", "high", "flat"))
    base_fixed, base_high = phases["fixed_baseline"], phases["high_baseline"]
    base_flat = phases["flat_baseline"]["throughput"]
    applied = flat["apply_lag"]["applied_per_s"]
    return [
        *(
            target(
                f"{alt}: p99 latency at {rate}/s",
                phase["latency"]["p99_ms"],
                "ms",
                "(reported)",
                True,
                baseline=base["latency"]["p99_ms"],
                ratio_value=ratio(phase["latency"]["p99_ms"], base["latency"]["p99_ms"]),
                note=f"p50 {phase['latency']['p50_ms']} ms; apply lag p99 "
                f"{phase['apply_lag']['p99_ms']} ms",
            )
            for rate, phase, base in (
                (s["rate"], fixed, base_fixed),
                (s["high_rate"], high, base_high),
            )
        ),
        target(
            f"{alt}: flat-out callbacks/s vs baseline",
            flat["throughput"],
            "callbacks/s",
            "(reported)",
            True,
            baseline=base_flat,
            ratio_value=ratio(flat["throughput"], base_flat),
            note=f"acknowledged; p99 {flat['latency']['p99_ms']} ms",
        ),
        target(
            f"{alt}: flat-out callbacks applied/s (end to end)",
            applied,
            "callbacks/s",
            "(reported)",
            True,
            baseline=base_flat,
            ratio_value=ratio(applied, base_flat),
            note=f"apply lag p99 {flat['apply_lag']['p99_ms']} ms",
        ),
    ]
