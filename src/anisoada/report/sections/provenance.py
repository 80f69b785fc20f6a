"""Provenance: versions, machine, git revision, seeds and wall time of every target."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from anisoada.report._model import Block, Section, Table, Text
from anisoada.report._results import ResultsDirectory
from anisoada.report.sections._common import TITLES


def _seeds(results: ResultsDirectory, name: str) -> str:
    record = results.target(name).record or {}
    if name == "logreg":
        config = (results.logreg.json("sweep/sweep.json") or {}).get("config", {})
        if config:
            return f"base seed {config.get('base_seed')}, {config.get('seeds')} seed(s)"
    if name == "lm":
        sweep = record.get("sweep", {})
        problems = sweep.get("problems", [])
        base = problems[0] if problems else {}
        if sweep:
            return (
                f"base seed {sweep.get('base_seed')}, {sweep.get('seeds')} seed(s), data seed "
                f"{base.get('data', {}).get('seed')}"
            )
    if name == "smoothness":
        return f"seed {record.get('settings', {}).get('seed')}"
    return "—"


def provenance_section(results: ResultsDirectory) -> Section:
    rows: list[dict[str, Any]] = []
    packages: dict[str, dict[str, str]] = {}
    for name in ("logreg", "lm", "smoothness", "theory"):
        target = results.target(name)
        if not target.present:
            rows.append({"target": name, "preset": "not run"})
            continue
        record = target.present_record
        origin = record.get("provenance", {})
        git = origin.get("git", {})
        commit = git.get("commit")
        machine = origin.get("machine", {})
        step = record.get("sweep_wall_time", record.get("check_seconds"))
        rows.append(
            {
                "target": name,
                "preset": record.get("preset"),
                "wall_time": float(record.get("wall_time", np.nan)),
                "step_time": float(step) if step is not None else np.nan,
                "seeds": _seeds(results, name),
                "git": (commit[:10] + (" (dirty)" if git.get("dirty") else "")) if commit else "—",
                "machine": f"{machine.get('platform', '?')}, {machine.get('cpus', '?')} CPUs",
                "python": origin.get("python", "—"),
            }
        )
        for package, version in origin.get("packages", {}).items():
            packages.setdefault(package, {})[name] = version or "—"
    table = pd.DataFrame.from_records(rows)
    blocks: list[Block] = [
        Text(
            "Each target records the versions, machine and git revision it ran with in its "
            "`reproduction.json`; wall times are as stored (a re-run that reused stored results "
            "is fast)."
        ),
        Table(
            "provenance",
            table,
            {
                "target": "target",
                "preset": "preset",
                "wall_time": "wall time (s)",
                "step_time": "sweep / check (s)",
                "seeds": "seeds",
                "git": "git revision",
                "machine": "machine",
                "python": "Python",
            },
            caption="Targets",
            digits=4,
        ),
    ]
    if packages:
        names = [n for n in ("logreg", "lm", "smoothness", "theory") if results.target(n).present]
        versions = pd.DataFrame.from_records(
            [{"package": p, **{n: v.get(n, "—") for n in names}} for p, v in packages.items()]
        )
        blocks.append(
            Table(
                "packages",
                versions,
                {"package": "package", **{n: n for n in names}},
                caption="Package versions per target",
            )
        )
    return Section("provenance", TITLES["provenance"], tuple(blocks))
