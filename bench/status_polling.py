"""2. Live status polling: cashier screens each polling their payment's status fragment every
2 seconds, as htmx does while a payment is in flight, against a hello-world route in the same
app (same process, same middleware, no login, no database, no template).

Every screen is a cashier of one of the bars, signed in, watching a tab payment in `sent` (the
fragment then also refreshes the tab's totals out of band: the real, heavier answer). Screens
poll with random phases, so the server sees a steady 250 requests/s for 500 screens. Sessions
are signed with the app's SECRET_KEY exactly as Flask-Login would write them at sign-in (see
seed.session_cookies); one real password login is made too, to show such a cookie is what the
app itself issues.
"""

from __future__ import annotations

import random
import re

from bench import loadgen, seed, stack
from bench.report import run_phase
from bench.stats import ratio, target

SCALES = {
    "full": {"bars": 100, "screens": 500, "interval": 2.0, "fixed_seconds": 30, "flat_seconds": 15,
             "connections": 16, "open_connections": 128},
    "smoke": {"bars": 3, "screens": 12, "interval": 2.0, "fixed_seconds": 2, "flat_seconds": 1,
              "connections": 4, "open_connections": 12},
}
CHECKED_BODIES = 50


def _seed(env: dict, s: dict) -> tuple[list[tuple[int, str]], str]:
    """Bars, cashiers, a tab and a payment in flight per screen; (payment id, cookie) pairs."""
    with stack.app_context(env) as app:
        bar_ids = seed.bars(s["bars"])
        per_bar = -(-s["screens"] // s["bars"])
        cashiers = seed.users(bar_ids, "cashier", per_bar=per_bar)[: s["screens"]]
        tab_ids = seed.tabs_with_lines([b for _, b in cashiers], [u for u, _ in cashiers])
        rng = random.Random(2)
        specs = [{"bar_id": bar_id, "tab_id": tab_id, "phone": f"2547{rng.randrange(20_000_000, 99_999_999)}",
                  "amount": 1350, "callback_token": f"{rng.getrandbits(160):040x}",
                  "checkout_request_id": f"ws_CO_bench{n}", "merchant_request_id": f"bench-{n}"}
                 for n, ((_, bar_id), tab_id) in enumerate(zip(cashiers, tab_ids, strict=True))]
        payment_ids = seed.sent_payments(specs)
        cookies = seed.session_cookies(app, [u for u, _ in cashiers])
        screens = [(pid, seed.cookie_header(app, cookies[uid]))
                   for pid, (uid, _) in zip(payment_ids, cashiers, strict=True)]
        login_check = _real_login_cookie_works(app, bar_ids[0], payment_ids[0])
    return screens, login_check


def _real_login_cookie_works(app, bar_id: int, payment_id: int) -> str:
    """Sign one cashier in with a password through POST /login (CSRF and all), in-process."""
    from app.extensions import db
    from app.models import User

    with app.app_context():  # a fresh `g`: nobody signed in yet
        return _login_and_poll(app, db, User, bar_id, payment_id)


def _login_and_poll(app, db, User, bar_id: int, payment_id: int) -> str:
    person = User(bar_id=bar_id, name="Login Check", email="login-check@bench.example.com", role="cashier")
    person.set_password("bench password 1", app.config["PASSWORD_HASH_METHOD"])
    db.session.add(person)
    db.session.commit()
    # Production cookies are Secure and CSRF checks the Referer on HTTPS: be an HTTPS browser.
    client, https = app.test_client(), {"base_url": "https://pesatab.bench",
                                        "headers": {"Referer": "https://pesatab.bench/login"}}
    page = client.get("/login", **https).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    answer = client.post("/login", data={"email": person.email, "password": "bench password 1",
                                         "csrf_token": token.group(1) if token else ""}, **https)
    if answer.status_code != 302:
        return f"login answered {answer.status_code}"
    status = client.get(f"/payments/{payment_id}/status", base_url=https["base_url"],
                        headers={"HX-Request": "true"}).status_code
    return "ok" if status in (200, 404) else f"status fragment after login answered {status}"


def _schedule(screens: list, s: dict, rng: random.Random) -> list[tuple[float, int]]:
    """(due time, screen) for every poll: each screen every `interval` s from a random phase."""
    polls = []
    for k in range(len(screens)):
        due = rng.uniform(0, s["interval"])
        while due < s["fixed_seconds"]:
            polls.append((due, k))
            due += s["interval"]
    polls.sort()
    return polls


def _fragment(port: int, screen: tuple[int, str]) -> bytes:
    payment_id, cookie = screen
    return loadgen.request_bytes("GET", f"/payments/{payment_id}/status", port,
                                 headers={"HX-Request": "true", "Cookie": cookie})


def _hello(port: int) -> bytes:
    return loadgen.request_bytes("GET", "/_bench/hello", port)


def run(scale: str = "full") -> dict:
    s = SCALES[scale]
    rng = random.Random(4)
    with stack.database("polling") as url:
        env = stack.app_env(url)
        stack.migrate(env)
        screens, login_check = _seed(env, s)
        polls = _schedule(screens, s, rng)
        offsets = [due for due, _ in polls]
        with stack.Gunicorn("bench.wsgi_app:app", env) as server:
            port = server.port
            fragment_requests = [_fragment(port, screens[k]) for _, k in polls]
            hello_requests = [_hello(port)] * len(polls)
            # Warm both routes on both workers (templates compiled, pools filled).
            loadgen.run(loadgen.Job(port, fragment_requests[: 4 * s["connections"]] + hello_requests[:50],
                                    connections=s["connections"], time_limit=30))
            phases = {}
            for label, reqs in (("hello", hello_requests), ("fragment", fragment_requests)):
                job = loadgen.Job(port, reqs, offsets=offsets, connections=s["open_connections"],
                                  time_limit=s["fixed_seconds"] + 5, keep_bodies=CHECKED_BODIES)
                phases[f"fixed_{label}"] = run_phase(job, server, url)
            flat_fragments = [_fragment(port, screen) for screen in screens]
            for label, reqs in (("hello", [_hello(port)]), ("fragment", flat_fragments)):
                job = loadgen.Job(port, reqs, connections=s["connections"], time_limit=s["flat_seconds"],
                                  total=1_000_000)
                phases[f"flat_{label}"] = run_phase(job, server, url)
            bodies_ok = _bodies_ok(port, screens, polls)
    return _figures(s, phases, login_check, bodies_ok)


def _bodies_ok(port: int, screens: list, polls: list) -> bool:
    """The answers are the real fragment: the payment's element, still waiting, tab totals."""
    sample = [screens[k] for _, k in polls[:CHECKED_BODIES]]
    outcome = loadgen.run(loadgen.Job(port, [_fragment(port, sc) for sc in sample], connections=4,
                                      time_limit=30, keep_bodies=len(sample)))
    for (payment_id, _), status, body in zip(sample, outcome.statuses, outcome.bodies, strict=True):
        text = body.decode(errors="replace")
        if status != 200 or f'id="payment-{payment_id}"' not in text or "hx-trigger" not in text:
            return False
    return True


def _figures(s: dict, phases: dict, login_check: str, bodies_ok: bool) -> dict:
    rate = round(s["screens"] / s["interval"])
    fixed, base_fixed = phases["fixed_fragment"], phases["fixed_hello"]
    flat, base_flat = phases["flat_fragment"], phases["flat_hello"]
    tput_ratio = ratio(flat["throughput"], base_flat["throughput"])
    errors = sum(p["failed"] for p in phases.values())
    p99 = fixed["latency"]["p99_ms"]
    targets = [
        target("flat-out fragments/s vs hello-world", flat["throughput"], "req/s", ">= 0.5 x baseline",
               (tput_ratio or 0) >= 0.5, baseline=base_flat["throughput"], ratio_value=tput_ratio),
        target(f"p99 latency, {s['screens']} screens ({rate} req/s)", p99, "ms", "< 30 ms",
               (p99 or 1e9) < 30, baseline=base_fixed["latency"]["p99_ms"],
               ratio_value=ratio(p99, base_fixed["latency"]["p99_ms"])),
        target(f"p50 latency, {s['screens']} screens ({rate} req/s)", fixed["latency"]["p50_ms"], "ms",
               "(reported)", True, baseline=base_fixed["latency"]["p50_ms"],
               ratio_value=ratio(fixed["latency"]["p50_ms"], base_fixed["latency"]["p50_ms"])),
        target("HTTP errors (all phases)", errors, "requests", "0", errors == 0),
        target("answers are the real fragment; a password login works", bodies_ok and login_check == "ok",
               "", "yes", bodies_ok and login_check == "ok", note=login_check),
    ]
    return {"settings": s, "phases": phases, "login_check": login_check, "bodies_ok": bodies_ok,
            "targets": targets}
