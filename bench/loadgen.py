"""The load generator: raw HTTP/1.1 over asyncio in a process of its own, 127.0.0.1 only.

A `Job` is a list of ready-made request bytes and either a schedule (open loop: request i is
due `offsets[i]` seconds after the start, whatever happened to the others) or none (closed
loop, "flat out": `connections` clients each send their next request as soon as the last
answer is in). Open-loop latency is measured from the time a request was *due*, not from when
it could be sent, so a stalled server is charged for the requests queued behind it (no
coordinated omission); `service` is measured from the moment the bytes went out.

Both loops are bounded by the number of requests and by `time_limit`, and stop by themselves.
Connections are kept alive (gunicorn's gthread worker honours HTTP/1.1 keep-alive); a
connection the server closed while idle is reopened once, outside the timing.

`python requests` costs several hundred microseconds of CPU per request, which on a 2-core
machine is taken from the server under test; this client spends a few tens.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import resource
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"  # never anything else: load only ever goes to this machine's loopback


@dataclass
class Job:
    port: int
    requests: list[bytes]
    offsets: list[float] | None = None  # open loop when set (seconds after start, ascending)
    connections: int = 16
    time_limit: float = 60.0
    timeout: float = 10.0
    keep_bodies: int = 0  # keep the first N response bodies (for checks)
    total: int | None = None  # closed loop: send this many, cycling through `requests`


@dataclass
class Outcome:
    statuses: list[int]  # per request: HTTP status, 0 for a transport error, -1 for never sent
    latency: list[float]  # seconds: from due time (open loop) or send time (closed loop)
    service: list[float]  # seconds from send time
    elapsed: float  # first send to last answer
    errors: list[str] = field(default_factory=list)  # the first few transport errors
    bodies: list[bytes] = field(default_factory=list)
    reconnects: int = 0
    cpu_s: float = 0.0  # CPU the load generator itself used

    @property
    def ok(self) -> int:
        return sum(1 for s in self.statuses if 200 <= s < 300)

    @property
    def failed(self) -> int:
        return len(self.statuses) - self.ok

    def answered(self, statuses=(200,)) -> list[float]:
        return [lat for s, lat in zip(self.statuses, self.latency, strict=True) if s in statuses]


def request_bytes(
    method: str, path: str, port: int, *, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """One HTTP/1.1 request, ready to write to a socket."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Connection: keep-alive",
        "User-Agent: pesatab-bench/1",
    ]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Stale(Exception):
    """The server closed a kept-alive connection before answering anything on it."""


IDLE_REUSE = 3.0  # seconds: never reuse a connection idle longer (gunicorn's keep-alive is 5 s)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.used = False
        self.idle_since = 0.0

    @classmethod
    async def open(cls, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 22)
        return cls(reader, writer)

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, data: bytes) -> tuple[int, bytes, bool]:
        """Send one request; returns (status, body, keep-alive)."""
        reused = self.used
        self.used = True
        self.writer.write(data)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if reused and not getattr(exc, "partial", b""):
                raise _Stale() from exc
            raise
        status = int(head[9:12])
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        keep = headers.get(b"connection") != b"close"
        if status in (204, 304) or status < 200:  # never a body (RFC 9112 6.3), nor a length
            body = b""
        elif b"content-length" in headers:
            body = await self.reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding") == b"chunked":
            body = await self._chunked()
        else:
            body, keep = await self.reader.read(), False
        return status, body, keep

    async def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append((await self.reader.readexactly(size + 2))[:-2])


class _Runner:
    def __init__(self, job: Job):
        self.job = job
        n = job.total or len(job.requests)
        self.attempted = n
        self.statuses = [-1] * n
        self.latency = [0.0] * n
        self.service = [0.0] * n
        self.errors: list[str] = []
        self.bodies: dict[int, bytes] = {}
        self.idle: list[_Conn] = []
        self.slots = asyncio.Semaphore(job.connections)
        self.reconnects = 0
        self.first = self.last = None

    def _idle_conn(self) -> _Conn | None:
        """The most recently used idle connection still young enough to trust."""
        now = asyncio.get_running_loop().time()
        while self.idle:
            conn = self.idle.pop()
            if now - conn.idle_since < IDLE_REUSE:
                return conn
            conn.close()
        return None

    async def _send(self, i: int) -> tuple[int, bytes]:
        data = self.job.requests[i % len(self.job.requests)]
        for attempt in range(2):
            conn = (self._idle_conn() if attempt == 0 else None) or await _Conn.open(self.job.port)
            try:
                status, body, keep = await conn.exchange(data)
            except _Stale:
                conn.close()
                self.reconnects += 1
                if attempt:
                    raise
                continue
            except BaseException:
                conn.close()
                raise
            if keep:
                conn.idle_since = asyncio.get_running_loop().time()
                self.idle.append(conn)
            else:
                conn.close()
            return status, body
        raise RuntimeError("unreachable")

    async def one(self, i: int, due: float | None) -> None:
        loop = asyncio.get_running_loop()
        async with self.slots:
            sent = loop.time()
            self.first = sent if self.first is None else min(self.first, sent)
            try:
                status, body = await asyncio.wait_for(self._send(i), self.job.timeout)
            except Exception as exc:  # a transport error or a timeout: counted, never raised
                status, body = 0, b""
                if len(self.errors) < 10:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            done = loop.time()
        self.last = done if self.last is None else max(self.last, done)
        self.statuses[i] = status
        self.service[i] = done - sent
        self.latency[i] = done - (sent if due is None else due)
        if i < self.job.keep_bodies:
            self.bodies[i] = body

    async def open_loop(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        deadline = start + self.job.time_limit
        tasks = []
        for i, offset in enumerate(self.job.offsets):
            due = start + offset
            if due > deadline:
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one(i, due)))
        if not tasks:
            return
        _, late = await asyncio.wait(
            tasks, timeout=max(1.0, deadline + self.job.timeout - loop.time())
        )
        for task in late:  # still queued for a connection: left as never sent (-1)
            task.cancel()

    async def closed_loop(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.job.time_limit
        order = iter(range(len(self.statuses)))
        taken = 0

        async def client() -> None:
            nonlocal taken
            for i in order:
                if loop.time() > deadline:
                    return
                taken = max(taken, i + 1)
                await self.one(i, None)

        await asyncio.gather(*(client() for _ in range(self.job.connections)))
        self.attempted = taken  # requests never taken because time ran out are not failures

    async def run(self) -> Outcome:
        await (self.open_loop() if self.job.offsets is not None else self.closed_loop())
        for conn in self.idle:
            conn.close()
        elapsed = (self.last - self.first) if self.first is not None and self.last else 0.0
        n = self.attempted
        bodies = [self.bodies.get(i, b"") for i in range(min(self.job.keep_bodies, n))]
        return Outcome(
            self.statuses[:n],
            self.latency[:n],
            self.service[:n],
            elapsed,
            self.errors,
            bodies,
            self.reconnects,
        )


def execute(job: Job) -> Outcome:
    """Run `job` in this process (the load process calls this)."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    outcome = asyncio.run(_Runner(job).run())
    after = resource.getrusage(resource.RUSAGE_SELF)
    outcome.cpu_s = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)
    return outcome


def run(job: Job) -> Outcome:
    """Run `job` in a separate process and wait for it: the generator's CPU is never the
    server's, and the GIL of one never slows the other."""
    if job.offsets is not None and len(job.offsets) != len(job.requests):
        raise ValueError("one offset per request")
    if job.total is not None and job.offsets is not None:
        raise ValueError("total is for the closed loop")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(execute, job).result(timeout=job.time_limit + job.timeout + 60)


def fixed_rate(n: int, rate: float) -> list[float]:
    """Offsets for `n` requests evenly spaced at `rate` per second."""
    return [i / rate for i in range(n)]


def wait_until_up(
    port: int, path: str = "/_bench/hello", timeout: float = 30.0, alive=lambda: True
) -> None:
    """Block until `GET path` answers 200 (the server is accepting and the app is loaded)."""
    data = request_bytes("GET", path, port)

    async def probe() -> int:
        conn = await _Conn.open(port)
        try:
            return (await asyncio.wait_for(conn.exchange(data), 5))[0]
        finally:
            conn.close()

    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline and alive():
        try:
            if asyncio.run(probe()) == 200:
                return
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on {HOST}:{port}{path} within {timeout:.0f}s ({last})")
