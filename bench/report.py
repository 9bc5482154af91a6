"""Turning load-generator outcomes into figures, the printed table, and the JSON files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from bench import loadgen, stack
from bench.loadgen import Outcome
from bench.stats import timing

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def phase_summary(outcome: Outcome) -> dict:
    """Throughput (answered 2xx per second), latency and service time, errors."""
    ok_latency = [
        lat for s, lat in zip(outcome.statuses, outcome.latency, strict=True) if 200 <= s < 300
    ]
    ok_service = [
        t for s, t in zip(outcome.statuses, outcome.service, strict=True) if 200 <= s < 300
    ]
    statuses = Counter(outcome.statuses)
    return {
        "requests": len(outcome.statuses),
        "ok": outcome.ok,
        "failed": outcome.failed,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "elapsed_s": round(outcome.elapsed, 3),
        "throughput": round(outcome.ok / outcome.elapsed, 1) if outcome.elapsed else None,
        "latency": timing(ok_latency),
        "service": timing(ok_service),
        "errors": outcome.errors,
        "reconnects": outcome.reconnects,
    }


def run_phase(job: loadgen.Job, server: stack.Gunicorn, database_url: str) -> dict:
    """Run `job` against `server`, with the CPU each side spent on it."""
    meter = stack.CpuMeter(server.worker_pids(), database_url).start()
    outcome = loadgen.run(job)
    summary = phase_summary(outcome)
    cpu = meter.stop()
    cpu["load_generator"] = outcome.cpu_s
    ok = summary["ok"] or 1
    cpu["app_ms_per_request"] = round(cpu.get("app_workers", 0.0) * 1000 / ok, 2)
    cpu["postgres_ms_per_request"] = round(cpu.get("postgres_ours", 0.0) * 1000 / ok, 2)
    summary["cpu"] = cpu
    return summary


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(results: dict[str, dict]) -> str:
    """One line per target: benchmark, target, figure, baseline, ratio, goal, met."""
    head = ("benchmark", "target", "figure", "baseline", "ratio", "goal", "met")
    rows = [head]
    for name, result in results.items():
        if "error" in result:
            rows.append((name, "FAILED TO RUN", result["error"][:60], "", "", "", "NO"))
            continue
        for t in result.get("targets", []):
            figure = (
                f"{_cell(t['figure'])} {t['unit']}".strip() if t["unit"] else _cell(t["figure"])
            )
            rows.append(
                (
                    name,
                    t["target"],
                    figure,
                    _cell(t["baseline"]),
                    _cell(t["ratio"]),
                    t["goal"],
                    _cell(t["met"]),
                )
            )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write(name: str, result: dict, folder: Path = RESULTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def results_block(folder: Path = RESULTS) -> str:
    """The latest figures of every benchmark, from the JSON files, as README markdown."""
    from bench import BENCHMARKS

    found = {}
    for name in BENCHMARKS:
        path = folder / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    if not found:
        return "(no results yet: run `make bench`)"
    lines = []
    for name, result in found.items():
        m = result["machine"]
        lines.append(
            f"- `{name}`: {m['timestamp']}, {result['seconds']} s, "
            f"commit {str(m['git_commit'])[:10]}"
            f"{' (uncommitted changes)' if m.get('git_dirty') else ''}, load average before "
            f"{m['load_average'][0]}"
        )
    m = next(iter(found.values()))["machine"]
    head = (
        f"Machine: {m['nproc']} x {m['cpu_model']}, {m['ram_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}, PostgreSQL {m['postgresql']}, gunicorn {m['gunicorn']} "
        f"(`{' '.join(m['gunicorn_args'])}`), SQLAlchemy {m['sqlalchemy']}, psycopg {m['psycopg']}."
    )
    rows = [
        "| benchmark | target | figure | baseline | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result in found.items():
        if "error" in result:
            rows.append(f"| {name} | FAILED TO RUN: {result['error'][:80]} | | | | | NO |")
            continue
        for t in result.get("targets", []):
            figure = (
                f"{_cell(t['figure'])} {t['unit']}".strip() if t["unit"] else _cell(t["figure"])
            )
            met = "**" + _cell(t["met"]) + "**" if not t["met"] else _cell(t["met"])
            rows.append(
                f"| {name} | {t['target']} | {figure} | {_cell(t['baseline'])} "
                f"| {_cell(t['ratio'])} | {t['goal']} | {met} |"
            )
    return "\n".join([head, "", *lines, "", *rows])


def update_readme(folder: Path = RESULTS, readme: Path = README) -> bool:
    """Rewrite the README's results block from the JSON files; False if it has no block."""
    if not readme.exists():
        return False
    text = readme.read_text()
    if START not in text or END not in text:
        return False
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    readme.write_text(f"{before}{START}\n{results_block(folder)}\n{END}{after}")
    return True
