"""4. Token economy: how many OAuth tokens PesaTab asks Daraja for, per bar.

Two runs, both through the app's own push path and the Daraja simulator:

- **A simulated hour** (in-process): 1,000 pushes at random times over 3,600 simulated seconds,
  10 bars (one Daraja app each), `start_push` as the cashier's and the API's push call it, the
  app's token cache and the simulator on one fake clock. Every token is revoked once at minute
  30 (a "forced expiry": Daraja refuses the cached token, the client fetches another once).
  Each fetch is classified: the bar's first, after the forced expiry, at the end of the token's
  life (3,599 s less the cache's 60 s margin), or a repeat: a fetch for a bar whose token was
  still good (in one process that is waste, and the target is none).
- **Production-shaped** (real time, compressed): the same 1,000 pushes through
  `POST /api/v1/payments` at 50/s to gunicorn (2 workers) with the simulator in its own process,
  one revocation half-way. Each worker process has its own token cache in memory, and the
  workers share each token through the database (`app/payments/token_store.py`), so this
  counts what a multi-worker deployment really asks Daraja for.
"""

from __future__ import annotations

import json
import random
import secrets
import subprocess
import sys
from collections import Counter

import requests

from app.simulator import CONTROL_ENV, CONTROL_HEADER
from bench import loadgen, seed, stack
from bench.report import phase_summary
from bench.simserver import app_credentials
from bench.stats import ratio, target

SCALES = {
    "full": {"bars": 10, "pushes": 1000, "hour": 3600.0, "revoke_at": [1800.0], "api_rate": 50},
    "smoke": {"bars": 3, "pushes": 30, "hour": 3600.0, "revoke_at": [1800.0], "api_rate": 15},
}
TOKEN_LIFE = 3599.0  # what Daraja's expires_in says
CACHE_MARGIN = 60.0  # app.mpesa.tokens.TokenCache refreshes this long before expiry


class FakeClock:
    """Wall time for the simulator and monotonic time for the token cache, moved by hand."""

    def __init__(self, start: float):
        self.now = start

    def time(self) -> float:
        return self.now


def _bars_with_credentials(n: int) -> list:
    """`n` live bars, each with its own Daraja app's credentials (sealed as the app seals them)."""
    from app.extensions import db
    from app.models import Bar, utcnow
    from app.settings import vault
    from app.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE

    bars = []
    for bar_id, (key, secret) in zip(seed.bars(n, "Token Bar"), app_credentials(n), strict=True):
        bar = db.session.get(Bar, bar_id)
        vault.save(
            bar,
            vault.CredentialInput(
                environment="sandbox",
                kind="paybill",
                shortcode=SANDBOX_SHORTCODE,
                till_number=None,
                consumer_key=key,
                consumer_secret=secret,
                passkey=SANDBOX_PASSKEY,
            ),
        )
        cred = vault.credential_for(bar)
        cred.verified_revision, cred.verified_at = cred.revision, utcnow()
        bar.setup_state = "live"
        db.session.commit()
        bars.append(bar)
    return bars


def _classify(
    fetches: list[dict], keys: dict[str, int], revocations: list[float], start: float
) -> dict:
    """Why each fetch happened: first, forced (the first after a revocation), lifetime (the token
    was used up), or repeat (the bar's token was still good: another process's cache, or waste)."""
    causes: Counter = Counter()
    last: dict[str, float] = {}
    per_bar: Counter = Counter()
    for fetch in sorted(fetches, key=lambda f: f["at"]):
        key, at = fetch["key"], fetch["at"] - start
        per_bar[keys.get(key, -1)] += 1
        if key not in last:
            cause = "first"
        elif any(last[key] - start < r <= at for r in revocations):
            cause = "forced"
        elif at - (last[key] - start) >= TOKEN_LIFE - CACHE_MARGIN - 1:
            cause = "lifetime"
        else:
            cause = "repeat"
        causes[cause] += 1
        last[key] = fetch["at"]
    return {"total": len(fetches), "causes": dict(causes), "per_bar": dict(sorted(per_bar.items()))}


def simulated_hour(url: str, env: dict, s: dict) -> dict:
    """Part A: one fake hour, in this process."""
    from app.extensions import db
    from app.payments.daraja import build_token_cache
    from app.payments.push import PushRequest, start_push
    from app.simulator import LiveServer, SimulatorState
    from bench.simserver import build

    start = 1_800_000_000.0
    clock = FakeClock(start)
    # A push's Timestamp is real EAT time; the simulator's clock is fake: widen its tolerance.
    state = SimulatorState(clock=clock.time, callback_lost=True, timestamp_tolerance=10.0**9)
    counter = build(state, s["bars"])
    rng = random.Random(6)
    with LiveServer(counter) as daraja:
        with stack.app_context({**env, "DARAJA_BASE_URL": daraja.url}) as app:
            # The app's own cache (shared through the database, as in production),
            # on the fake clock.
            app.extensions["pesatab_daraja_tokens"] = build_token_cache(clock=clock.time)
            bars = _bars_with_credentials(s["bars"])
            keys = {
                key: bar.id for bar, (key, _) in zip(bars, app_credentials(s["bars"]), strict=True)
            }
            bar_ids, bar_model = [bar.id for bar in bars], type(bars[0])
            times = sorted(rng.uniform(0, s["hour"]) for _ in range(s["pushes"]))
            revocations, pending = [], list(s["revoke_at"])
            statuses = Counter()
            for n, offset in enumerate(times):
                while pending and offset >= pending[0]:
                    state.revoke_tokens()
                    revocations.append(pending.pop(0))
                clock.now = start + offset
                bar = db.session.get(bar_model, rng.choice(bar_ids))
                payment = start_push(
                    bar,
                    PushRequest(
                        phone=f"25472{n:07d}",
                        amount=100,
                        purpose="api",
                        account_reference=f"R{n}",
                        description="Bench",
                    ),
                )
                statuses[payment.status] += 1
                db.session.remove()
        state.close()
    fetches = _classify(counter.fetches, keys, revocations, start)
    return {
        "pushes": len(times),
        "statuses": dict(statuses),
        "revocations_at_s": revocations,
        "fetches": fetches,
    }


def production_shaped(url: str, env: dict, s: dict) -> dict:
    """Part B: gunicorn's workers, real time, the simulator in its own process."""
    sim_port = stack.free_port()
    control = {CONTROL_HEADER: secrets.token_urlsafe(32)}  # the simulator's control secret
    # One more Daraja app than bars: the baseline's own, so its token is not counted as a bar's.
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.simserver",
            "--port",
            str(sim_port),
            "--apps",
            str(s["bars"] + 1),
        ],
        cwd=stack.ROOT,
        env={**env, CONTROL_ENV: control[CONTROL_HEADER]},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        loadgen.wait_until_up(sim_port, "/_bench/oauth")
        port = stack.free_port()
        app_env = {
            **env,
            "DARAJA_BASE_URL": f"http://127.0.0.1:{sim_port}",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        }
        with stack.app_context(app_env):
            from app.api.keys import create_key

            _forget_shared_tokens()  # part A's, issued by another simulator on a fake clock
            bars = _bars_with_credentials(s["bars"])
            api_keys = [create_key(bar, "Bench POS").secret for bar in bars]
            keys = {
                key: bar.id for bar, (key, _) in zip(bars, app_credentials(s["bars"]), strict=True)
            }
        with stack.Gunicorn("bench.wsgi_app:app", app_env, port=port) as server:
            direct = _direct_pushes(
                sim_port,
                max(10, s["pushes"] // 4),
                s["api_rate"],
                app_credentials(s["bars"] + 1)[-1],
                control,
            )
            meter = stack.CpuMeter(server.worker_pids(), url, {"simulator": sim.pid}).start()
            outcome = _api_pushes(server.port, sim_port, api_keys, s, control)
            outcome["cpu"] = meter.stop()
            outcome["direct_to_simulator"] = direct
            settled = _settled(app_env, outcome["payment_count"])
        fetches = requests.get(f"http://127.0.0.1:{sim_port}/_bench/oauth", timeout=10).json()
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    baseline = [f for f in fetches if f["key"] not in keys]  # the direct pushes' token
    fetches = [f for f in fetches if f["key"] in keys]
    start = min((f["at"] for f in fetches), default=0.0)
    counted = _classify(fetches, keys, [outcome["revoked_at"] - start], start)
    return {
        **outcome,
        "settled": settled,
        "fetches": counted,
        "baseline_fetches": len(baseline),
        "workers": stack.WORKERS,
    }


def _forget_shared_tokens() -> None:
    from sqlalchemy import delete

    from app.extensions import db
    from app.models import DarajaToken

    db.session.execute(delete(DarajaToken))
    db.session.commit()


def _direct_pushes(
    sim_port: int, n: int, rate: float, credentials: tuple[str, str], control: dict[str, str]
) -> dict:
    """The baseline: STK pushes straight to the simulator (what Daraja itself takes to answer),
    at the same rate, with its callbacks switched off so they touch nothing. Its token comes
    from a Daraja app no bar uses, so it is not counted as one of PesaTab's fetches."""
    from app.simulator.testing import basic_auth, stk_push_body

    base = f"http://127.0.0.1:{sim_port}"
    key, secret = credentials
    token = requests.get(
        f"{base}/oauth/v1/generate?grant_type=client_credentials",
        headers=basic_auth(key, secret),
        timeout=10,
    ).json()["access_token"]
    requests.post(
        f"{base}/_control/faults", json={"callback_lost": True}, headers=control, timeout=10
    ).raise_for_status()
    try:
        reqs = [
            loadgen.request_bytes(
                "POST",
                "/mpesa/stkpush/v1/processrequest",
                sim_port,
                body=json.dumps(stk_push_body(phone=f"25474{i:07d}")).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            for i in range(n)
        ]
        job = loadgen.Job(
            sim_port,
            reqs,
            offsets=loadgen.fixed_rate(n, rate),
            connections=32,
            time_limit=n / rate + 30,
            timeout=30,
        )
        return phase_summary(loadgen.run(job))
    finally:
        requests.delete(f"{base}/_control/faults", headers=control, timeout=10).raise_for_status()


def _api_pushes(
    port: int, sim_port: int, api_keys: list[str], s: dict, control: dict[str, str]
) -> dict:
    """The pushes over HTTP in two halves, every token revoked in between."""
    import time

    rng = random.Random(7)
    reqs = []
    for n in range(s["pushes"]):
        body = json.dumps(
            {"phone": f"25473{n:07d}", "amount": 100, "reference": f"R{n}", "description": "Bench"}
        ).encode()
        reqs.append(
            loadgen.request_bytes(
                "POST",
                "/api/v1/payments",
                port,
                body=body,
                headers={
                    "Authorization": f"Bearer {rng.choice(api_keys)}",
                    "Content-Type": "application/json",
                },
            )
        )
    half = len(reqs) // 2
    phases = []
    revoked_at = 0.0
    for part in (reqs[:half], reqs[half:]):
        job = loadgen.Job(
            port,
            part,
            offsets=loadgen.fixed_rate(len(part), s["api_rate"]),
            connections=32,
            time_limit=len(part) / s["api_rate"] + 30,
            timeout=30,
        )
        outcome = loadgen.run(job)
        phases.append(outcome)
        if not revoked_at:
            requests.post(
                f"http://127.0.0.1:{sim_port}/_control/revoke-tokens", headers=control, timeout=10
            ).raise_for_status()
            revoked_at = time.time()
    merged = loadgen.Outcome(
        [x for o in phases for x in o.statuses],
        [x for o in phases for x in o.latency],
        [x for o in phases for x in o.service],
        sum(o.elapsed for o in phases),
        [e for o in phases for e in o.errors],
    )
    summary = phase_summary(merged)
    return {
        "api": summary,
        "payment_count": summary["ok"],
        "failed": summary["failed"],
        "revoked_at": revoked_at,
    }


def _settled(env: dict, expected: int, wait: float = 20.0) -> dict:
    """Wait for the simulator's callbacks to settle the pushes; count the statuses."""
    import time

    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Payment

    deadline = time.monotonic() + wait
    with stack.app_context(env):
        while True:
            counts = dict(
                db.session.execute(
                    select(Payment.status, func.count()).group_by(Payment.status)
                ).all()
            )
            db.session.rollback()
            if counts.get("paid", 0) >= expected or time.monotonic() > deadline:
                return counts
            time.sleep(0.5)


def run(scale: str = "full") -> dict:
    s = SCALES[scale]
    with stack.database("tokens") as url:
        # The simulator and its callbacks speak plain http on loopback, which production refuses
        # (it wants https addresses): these runs are development, otherwise the same settings.
        env = {**stack.app_env(url), "PESATAB_ENV": "development"}
        stack.migrate(env)
        hour = simulated_hour(url, env, s)
        production = production_shaped(url, env, s)
    return _figures(s, hour, production)


def _figures(s: dict, hour: dict, production: dict) -> dict:
    forced = len(s["revoke_at"])
    allowed = s["bars"] * (1 + forced)
    a, b = hour["fetches"], production["fetches"]
    api, direct = production["api"]["latency"], production["direct_to_simulator"]["latency"]
    a_useful = a["causes"].get("first", 0) + a["causes"].get("forced", 0)
    pushes_ok = hour["statuses"].get("sent", 0) == hour["pushes"]
    targets = [
        target(
            f"simulated hour: token fetches ({s['bars']} bars, {forced} forced expiry)",
            a["total"],
            "fetches",
            f"<= {allowed} (+ end-of-life refreshes)",
            a["causes"].get("repeat", 0) == 0 and a_useful <= allowed,
            baseline=allowed,
            ratio_value=round(a["total"] / allowed, 3),
            note=f"causes {a['causes']}",
        ),
        target(
            "simulated hour: every push accepted",
            pushes_ok,
            "",
            "yes",
            pushes_ok,
            note=str(hour["statuses"]),
        ),
        target(
            f"gunicorn x{production['workers']}: token fetches, same pushes",
            b["total"],
            "fetches",
            f"<= {allowed}",
            b["total"] <= allowed,
            baseline=allowed,
            ratio_value=round(b["total"] / allowed, 3),
            note=f"causes {b['causes']}; workers share tokens through the database",
        ),
        target(
            "gunicorn: HTTP errors",
            production["failed"],
            "requests",
            "0",
            production["failed"] == 0,
        ),
        target(
            f"push via the API at {s['api_rate']}/s: p50",
            api["p50_ms"],
            "ms",
            "(reported)",
            True,
            baseline=direct["p50_ms"],
            ratio_value=ratio(api["p50_ms"], direct["p50_ms"]),
            note="baseline: the same push straight to the simulator",
        ),
        target(
            f"push via the API at {s['api_rate']}/s: p99",
            api["p99_ms"],
            "ms",
            "(reported)",
            True,
            baseline=direct["p99_ms"],
            ratio_value=ratio(api["p99_ms"], direct["p99_ms"]),
        ),
    ]
    return {
        "settings": s,
        "simulated_hour": hour,
        "production_shaped": production,
        "targets": targets,
    }
