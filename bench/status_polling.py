"""2. Live status polling: cashier screens each polling their payment's status fragment every
2 seconds, as htmx does while a payment is in flight, against a hello-world route in the same
app (same process, same middleware, no login, no database, no template).

Every screen is a cashier of one of the bars, signed in, watching a tab payment in `sent`.
Screens poll with random phases, so the server sees a steady 250 requests/s for 500 screens.
Sessions are signed with the app's SECRET_KEY exactly as Flask-Login would write them at
sign-in (see seed.session_cookies); one real password login is made too, to show such a cookie
is what the app itself issues.

The load is the real client's: each screen first gets its fragment (the full answer, with the
tab's totals out of band), whose poll URL carries the version it shows (`?v=`); from then on
it polls that URL, and the server answers 204 No Content (htmx swaps nothing) while nothing
shown has changed. During the fixed-rate phase the callbacks of some payments arrive (real
`POST /hooks/stk/<token>`, paid): their screens' next polls get the final fragment (200), after
which a screen stops polling, as the final fragment has no polling attributes. The flat-out
phases measure both answers: polls of waiting payments (204) and polls whose version is stale
(the full fragment, 200: what each poll cost before screens sent their version).
"""

from __future__ import annotations

import json
import random
import re
import time

from bench import loadgen, seed, stack
from bench.loadgen import Outcome
from bench.report import phase_summary, run_phase
from bench.stats import ratio, target

SCALES = {
    "full": {
        "bars": 100,
        "screens": 500,
        "interval": 2.0,
        "fixed_seconds": 30,
        "flat_seconds": 15,
        "connections": 16,
        "open_connections": 128,
        "paid_share": 0.1,
        "callbacks_from": 10.0,
        "callbacks_over": 5.0,
    },
    "smoke": {
        "bars": 3,
        "screens": 12,
        "interval": 2.0,
        "fixed_seconds": 6,
        "flat_seconds": 1,
        "connections": 4,
        "open_connections": 12,
        "paid_share": 0.25,
        "callbacks_from": 1.0,
        "callbacks_over": 0.5,
    },
}
CHECKED_BODIES = 50
POLLS_AFTER_CALLBACK = 2  # the first may come before the callback is applied
HX_GET = re.compile(rb'hx-get="([^"]+)"')


def _seed(env: dict, s: dict) -> tuple[list[dict], str]:
    """Bars, cashiers, a tab and a payment in flight per screen; one dict per screen with the
    payment id, the cashier's cookie, and the paid callback Daraja would send for it."""
    with stack.app_context(env) as app:
        bar_ids = seed.bars(s["bars"])
        per_bar = -(-s["screens"] // s["bars"])
        cashiers = seed.users(bar_ids, "cashier", per_bar=per_bar)[: s["screens"]]
        tab_ids = seed.tabs_with_lines([b for _, b in cashiers], [u for u, _ in cashiers])
        rng = random.Random(2)
        specs = [
            {
                "bar_id": bar_id,
                "tab_id": tab_id,
                "phone": f"2547{rng.randrange(20_000_000, 99_999_999)}",
                "amount": 1350,
                "callback_token": f"{rng.getrandbits(160):040x}",
                "checkout_request_id": f"ws_CO_bench{n}",
                "merchant_request_id": f"bench-{n}",
            }
            for n, ((_, bar_id), tab_id) in enumerate(zip(cashiers, tab_ids, strict=True))
        ]
        payment_ids = seed.sent_payments(specs)
        cookies = seed.session_cookies(app, [u for u, _ in cashiers])
        screens = [
            {
                "payment_id": pid,
                "bar_id": bar_id,
                "cookie": seed.cookie_header(app, cookies[uid]),
                "callback_token": spec["callback_token"],
                "callback_body": _paid_callback(spec),
            }
            for pid, (uid, bar_id), spec in zip(payment_ids, cashiers, specs, strict=True)
        ]
        login_check = _real_login_cookie_works(app, bar_ids[0], payment_ids[0])
    return screens, login_check


def _paid_callback(spec: dict) -> bytes:
    """The callback Daraja sends when the customer pays (the simulator's own builder)."""
    from app.simulator import ids
    from app.simulator.callbacks import callback_body
    from app.simulator.faults import Faults
    from app.simulator.models import Transaction
    from app.simulator.outcomes import callback_desc

    now = time.time()
    txn = Transaction(
        checkout_request_id=spec["checkout_request_id"],
        merchant_request_id=spec["merchant_request_id"],
        shortcode="174379",
        transaction_type="CustomerPayBillOnline",
        party_a=spec["phone"],
        party_b="174379",
        phone=spec["phone"],
        amount=spec["amount"],
        account_reference="TAB",
        transaction_desc="Bar tab",
        callback_url="",
        result_code=0,
        result_desc=callback_desc(0),
        receipt=ids.new_receipt(),
        created_at=now,
        resolves_at=now,
        transaction_date=int(ids.eat_timestamp(now)),
    )
    return json.dumps(callback_body(txn, Faults())).encode()


def _real_login_cookie_works(app, bar_id: int, payment_id: int) -> str:
    """Sign one cashier in with a password through POST /login (CSRF and all), in-process."""
    from app.extensions import db
    from app.models import User

    with app.app_context():  # a fresh `g`: nobody signed in yet
        return _login_and_poll(app, db, User, bar_id, payment_id)


def _login_and_poll(app, db, User, bar_id: int, payment_id: int) -> str:
    person = User(
        bar_id=bar_id, name="Login Check", email="login-check@bench.example.com", role="cashier"
    )
    person.set_password("bench password 1", app.config["PASSWORD_HASH_METHOD"])
    db.session.add(person)
    db.session.commit()
    # Production cookies are Secure and CSRF checks the Referer on HTTPS: be an HTTPS browser.
    client, https = (
        app.test_client(),
        {
            "base_url": "https://pesatab.bench",
            "headers": {"Referer": "https://pesatab.bench/login"},
        },
    )
    page = client.get("/login", **https).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    answer = client.post(
        "/login",
        data={
            "email": person.email,
            "password": "bench password 1",
            "csrf_token": token.group(1) if token else "",
        },
        **https,
    )
    if answer.status_code != 302:
        return f"login answered {answer.status_code}"
    status = client.get(
        f"/payments/{payment_id}/status", base_url=https["base_url"], headers={"HX-Request": "true"}
    ).status_code
    return "ok" if status in (200, 404) else f"status fragment after login answered {status}"


def _schedule(
    screens: list, paid: dict[int, float], s: dict, rng: random.Random
) -> list[tuple[float, str, int]]:
    """(due time, "poll" or "callback", screen) for the fixed-rate phase: each screen polls every
    `interval` s from a random phase; a paid screen's callback arrives at its time, and the
    screen stops polling POLLS_AFTER_CALLBACK polls later (it then shows the final fragment)."""
    events = []
    for k in range(len(screens)):
        due = rng.uniform(0, s["interval"])
        stop = paid[k] + POLLS_AFTER_CALLBACK * s["interval"] if k in paid else s["fixed_seconds"]
        while due < min(stop, s["fixed_seconds"]):
            events.append((due, "poll", k))
            due += s["interval"]
    events.extend((at, "callback", k) for k, at in paid.items())
    events.sort()
    return events


def _fragment(port: int, screen: dict, path: str | None = None) -> bytes:
    """A poll as htmx sends it: the URL of the fragment on screen (with its version, once known)."""
    return loadgen.request_bytes(
        "GET",
        path or f"/payments/{screen['payment_id']}/status",
        port,
        headers={"HX-Request": "true", "Cookie": screen["cookie"]},
    )


def _callback(port: int, screen: dict) -> bytes:
    return loadgen.request_bytes(
        "POST",
        f"/hooks/stk/{screen['callback_token']}",
        port,
        body=screen["callback_body"],
        headers={"Content-Type": "application/json;charset=UTF-8"},
    )


def _hello(port: int) -> bytes:
    return loadgen.request_bytes("GET", "/_bench/hello", port)


def _poll_urls(
    port: int, screens: list, s: dict, server, url: str
) -> tuple[list[str | None], dict]:
    """Each screen's first answer (no version yet: the fragment as the tab page or the pay
    answer left it), and the poll URL it carries. Also a phase: the full answer."""
    job = loadgen.Job(
        port,
        [_fragment(port, sc) for sc in screens],
        connections=s["connections"],
        time_limit=60,
        keep_bodies=len(screens),
    )
    summary, outcome = _measured_phase(job, server, url)
    urls = []
    for status, body in zip(outcome.statuses, outcome.bodies, strict=True):
        found = HX_GET.search(body) if status == 200 else None
        urls.append(found.group(1).decode().replace("&amp;", "&") if found else None)
    return urls, summary


def _subset(outcome: Outcome, indices: list[int]) -> Outcome:
    return Outcome(
        [outcome.statuses[i] for i in indices],
        [outcome.latency[i] for i in indices],
        [outcome.service[i] for i in indices],
        outcome.elapsed,
        outcome.errors,
        [],
        outcome.reconnects,
        outcome.cpu_s,
    )


def _measured_phase(
    job: loadgen.Job, server, url: str, kinds: list[str] | None = None
) -> tuple[dict, Outcome]:
    """run_phase, also returning the outcome; for a job of polls and callbacks (`kinds`), the
    figures are the polls' and the callbacks get their own summary; the CPU (per answered
    request) covers both."""
    meter = stack.CpuMeter(server.worker_pids(), url).start()
    outcome = loadgen.run(job)
    cpu = meter.stop()
    kinds = kinds or ["poll"] * len(outcome.statuses)
    summary = phase_summary(_subset(outcome, [i for i, kind in enumerate(kinds) if kind == "poll"]))
    if "callback" in kinds:
        summary["callbacks"] = phase_summary(
            _subset(outcome, [i for i, kind in enumerate(kinds) if kind == "callback"])
        )
    cpu["load_generator"] = outcome.cpu_s
    ok = outcome.ok or 1
    cpu["app_ms_per_request"] = round(cpu.get("app_workers", 0.0) * 1000 / ok, 2)
    cpu["postgres_ms_per_request"] = round(cpu.get("postgres_ours", 0.0) * 1000 / ok, 2)
    summary["cpu"] = cpu
    return summary, outcome


def run(scale: str = "full") -> dict:
    s = SCALES[scale]
    rng = random.Random(4)
    with stack.database("polling") as url:
        env = stack.app_env(url)
        stack.migrate(env)
        screens, login_check = _seed(env, s)
        n_paid = max(1, round(len(screens) * s["paid_share"]))
        paid = {
            k: s["callbacks_from"] + rng.uniform(0, s["callbacks_over"])
            for k in rng.sample(range(len(screens)), n_paid)
        }
        events = _schedule(screens, paid, s, rng)
        offsets = [due for due, _, _ in events]
        kinds = [kind for _, kind, _ in events]
        with stack.Gunicorn("bench.wsgi_app:app", env) as server:
            port = server.port
            hello_requests = [_hello(port)] * len(events)
            # Warm both routes on both workers (templates compiled, pools filled).
            loadgen.run(
                loadgen.Job(
                    port,
                    [_fragment(port, sc) for sc in screens[: 4 * s["connections"]]]
                    + hello_requests[:50],
                    connections=s["connections"],
                    time_limit=30,
                )
            )
            phases = {}
            urls, phases["first_fragment"] = _poll_urls(port, screens, s, server, url)
            versioned = [_fragment(port, sc, u) for sc, u in zip(screens, urls, strict=True)]
            mixed = [
                versioned[k] if kind == "poll" else _callback(port, screens[k])
                for _, kind, k in events
            ]
            job = loadgen.Job(
                port,
                hello_requests,
                offsets=offsets,
                connections=s["open_connections"],
                time_limit=s["fixed_seconds"] + 5,
            )
            phases["fixed_hello"] = run_phase(job, server, url)
            job = loadgen.Job(
                port,
                mixed,
                offsets=offsets,
                connections=s["open_connections"],
                time_limit=s["fixed_seconds"] + 5,
            )
            phases["fixed_fragment"], fixed_outcome = _measured_phase(job, server, url, kinds)
            waiting = [k for k in range(len(screens)) if k not in paid]
            stale = [_fragment(port, screens[k]) for k in waiting]  # no version: the full answer
            for label, reqs in (
                ("hello", [_hello(port)]),
                ("fragment", [versioned[k] for k in waiting]),
                ("full_fragment", stale),
            ):
                job = loadgen.Job(
                    port,
                    reqs,
                    connections=s["connections"],
                    time_limit=s["flat_seconds"],
                    total=1_000_000,
                )
                phases[f"flat_{label}"] = run_phase(job, server, url)
            changes = _changes_seen(events, fixed_outcome, paid, len(screens))
            bodies_ok = _bodies_ok(port, screens, urls, waiting)
            answers_ok = _answers_ok(port, screens, urls, paid, waiting)
    return _figures(s, phases, login_check, bodies_ok, answers_ok, changes)


def _changes_seen(events: list, outcome: Outcome, paid: dict, n_screens: int) -> dict:
    """Per screen, what its polls got in the fixed-rate phase: a waiting screen only 204; a paid
    screen 204 until its callback, then the final fragment (200) on one of its last polls."""
    got: dict[int, list[tuple[float, int]]] = {k: [] for k in range(n_screens)}
    for (due, kind, k), status in zip(events, outcome.statuses, strict=True):
        if kind == "poll":
            got[k].append((due, status))
    waiting_200 = sum(
        1 for k, polls in got.items() if k not in paid for _, st in polls if st == 200
    )
    seen = sum(1 for k in paid if any(st == 200 for due, st in got[k] if due >= paid[k]))
    early_200 = sum(1 for k in paid for due, st in got[k] if st == 200 and due < paid[k] - 1.0)
    return {
        "paid_screens": len(paid),
        "paid_screens_saw_change": seen,
        "waiting_screens_200": waiting_200,
        "paid_screens_200_before_callback": early_200,
    }


def _bodies_ok(port: int, screens: list, urls: list, waiting: list[int]) -> bool:
    """The answers are the real fragment: the payment's element, still waiting, polling its own
    versioned URL, with the tab's totals out of band."""
    sample = waiting[:CHECKED_BODIES]
    outcome = loadgen.run(
        loadgen.Job(
            port,
            [_fragment(port, screens[k]) for k in sample],
            connections=4,
            time_limit=30,
            keep_bodies=len(sample),
        )
    )
    for k, status, body in zip(sample, outcome.statuses, outcome.bodies, strict=True):
        text = body.decode(errors="replace")
        pid = screens[k]["payment_id"]
        if (
            status != 200
            or f'id="payment-{pid}"' not in text
            or "hx-trigger" not in text
            or f'hx-get="/payments/{pid}/status?v=' not in text
            or 'id="tab-summary-' not in text
            or urls[k] is None
        ):
            return False
    return True


def _answers_ok(port: int, screens: list, urls: list, paid: dict, waiting: list[int]) -> dict:
    """After the phases: a waiting screen's versioned poll is 204; a paid screen's (stale) one
    is the final fragment with no polling attributes, the balance at KES 0 and the close
    section; another bar's cashier gets 404 for the same URL, version or not."""
    k_wait, k_paid = waiting[0], next(iter(paid))
    other = next(
        k for k in range(len(screens)) if screens[k]["bar_id"] != screens[k_paid]["bar_id"]
    )
    stranger = dict(screens[k_paid], cookie=screens[other]["cookie"])
    reqs = [
        _fragment(port, screens[k_wait], urls[k_wait]),
        _fragment(port, screens[k_paid], urls[k_paid]),
        _fragment(port, stranger, urls[k_paid]),
        _fragment(port, stranger),
    ]
    outcome = loadgen.run(
        loadgen.Job(port, reqs, connections=1, time_limit=30, keep_bodies=len(reqs))
    )
    final = outcome.bodies[1].decode(errors="replace")
    status_div = final.split("</div>", 1)[0]
    checks = {
        "waiting_204": outcome.statuses[0] == 204 and outcome.bodies[0] == b"",
        "paid_200_final": outcome.statuses[1] == 200
        and "badge-paid" in status_div
        and "hx-trigger" not in status_div
        and "KES 0" in final
        and 'id="tab-close-' in final,
        "other_bar_404": outcome.statuses[2] == 404 and outcome.statuses[3] == 404,
    }
    checks["all"] = all(checks.values())
    return checks


def _figures(
    s: dict, phases: dict, login_check: str, bodies_ok: bool, answers_ok: dict, changes: dict
) -> dict:
    rate = round(s["screens"] / s["interval"])
    fixed, base_fixed = phases["fixed_fragment"], phases["fixed_hello"]
    flat, base_flat = phases["flat_fragment"], phases["flat_hello"]
    full = phases["flat_full_fragment"]
    tput_ratio = ratio(flat["throughput"], base_flat["throughput"])
    errors = sum(p["failed"] for p in phases.values()) + fixed["callbacks"]["failed"]
    p99 = fixed["latency"]["p99_ms"]
    answers = {"204": fixed["statuses"].get("204", 0), "200": fixed["statuses"].get("200", 0)}
    right = (
        bodies_ok
        and login_check == "ok"
        and answers_ok["all"]
        and changes["waiting_screens_200"] == 0
        and changes["paid_screens_200_before_callback"] == 0
    )
    targets = [
        target(
            "flat-out polls/s (waiting: 204) vs hello-world",
            flat["throughput"],
            "req/s",
            ">= 0.5 x baseline",
            (tput_ratio or 0) >= 0.5,
            baseline=base_flat["throughput"],
            ratio_value=tput_ratio,
        ),
        target(
            f"p99 latency, {s['screens']} screens ({rate} req/s)",
            p99,
            "ms",
            "< 30 ms",
            (p99 or 1e9) < 30,
            baseline=base_fixed["latency"]["p99_ms"],
            ratio_value=ratio(p99, base_fixed["latency"]["p99_ms"]),
        ),
        target(
            f"p50 latency, {s['screens']} screens ({rate} req/s)",
            fixed["latency"]["p50_ms"],
            "ms",
            "(reported)",
            True,
            baseline=base_fixed["latency"]["p50_ms"],
            ratio_value=ratio(fixed["latency"]["p50_ms"], base_fixed["latency"]["p50_ms"]),
        ),
        target(
            f"answers at {rate} req/s: 204 / 200 (callbacks for {changes['paid_screens']} screens)",
            f"{answers['204']:,} / {answers['200']:,}",
            "",
            "(reported)",
            True,
            note=f"{changes['paid_screens_saw_change']} of {changes['paid_screens']} "
            "paid screens saw the change within the phase",
        ),
        target(
            "flat-out full fragments/s (stale version: 200)",
            full["throughput"],
            "req/s",
            "(reported)",
            True,
            baseline=base_flat["throughput"],
            ratio_value=ratio(full["throughput"], base_flat["throughput"]),
        ),
        target("HTTP errors (all phases)", errors, "requests", "0", errors == 0),
        target(
            "answers are the real fragment, 204 only when unchanged, 404 across bars; "
            "a password login works",
            right,
            "",
            "yes",
            right,
            note=login_check,
        ),
    ]
    return {
        "settings": s,
        "phases": phases,
        "answers_fixed": answers,
        "changes": changes,
        "answers_check": answers_ok,
        "login_check": login_check,
        "bodies_ok": bodies_ok,
        "targets": targets,
    }
