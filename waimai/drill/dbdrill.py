"""The database drills: `waimai drill lunch-rush --fault database-down --database postgres --standby`,
`--fault database-outage` (no standby: stopped, then back) and `--fault database-hang` (SIGSTOP: the server
accepts connections and answers nothing).

Each builds its own database (never a shared server: it is stopped, killed or frozen), runs a Waimai
process on it under order load (`dbfail.run`), probes what people and balancers see every second, and
scores the run: MTTD ≤ 15 s; /status answered every probe during the fault; orders acknowledged with 0
lost and 0 duplicated; every spooled order confirmed or refused within 60 s of the database returning;
users told (the status page and banners, from the last-known copy) ≤ 60 s after the incident opened;
the incident recorded on 下单 once the database is back. Writes `scorecard.json` into the folder.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAULTS = {"database-down": "kill -9 the primary node of a pg_auto_failover formation at the peak (needs --standby)",
          "database-outage": "no standby: the database is stopped for the fault's length, then started again",
          "database-hang": "the database accepts connections and answers nothing (SIGSTOP), then resumes"}


@dataclass
class DbDrillConfig:
    fault: str
    out: Path = Path("var/drills")
    standby: bool = False
    warmup_s: float = 15.0
    fault_s: float = 60.0
    after_s: float = 45.0
    workers: int = 4
    progress: Callable[[str], None] = print


def targets(f: dict[str, Any], *, standby: bool) -> dict[str, bool]:
    det, told = f.get("s_fault_to_detected"), f.get("s_fault_to_users_told")
    out = {
        "MTTD ≤ 15 s": det is not None and det <= 15,
        "/status answered every probe during the fault": f["status_probes"] > 0
        and f["status_probes_answered"] == f["status_probes"],
        "orders acknowledged": f["orders_acknowledged"] > 0,
        "0 orders lost": f["lost"] == 0,
        "0 orders duplicated": f["duplicated"] == 0,
        "every spooled order confirmed or refused ≤ 60 s after the database returned":
            f["spooled_still_pending"] == 0 and (f["s_return_to_spool_settled"] or 0) <= 60,
        "users told ≤ 60 s after the incident opened": told is not None and det is not None and told - det <= 60,
        "incident recorded on 下单": bool(f["incident_recorded"]),
    }
    if standby:
        out["first order placed ≤ 30 s after the kill"] = (f.get("s_kill_to_first_order_placed") or 999) <= 30
    return out


def run(cfg: DbDrillConfig) -> tuple[dict[str, Any], dict[str, bool], Path]:
    from waimai.drill import dbfail

    if cfg.fault not in FAULTS:
        raise ValueError(f"unknown database fault {cfg.fault!r}")
    if cfg.fault == "database-down" and not cfg.standby:
        raise ValueError("database-down kills the primary: run it with --standby (a pg_auto_failover formation)")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    folder = (cfg.out / f"{cfg.fault}-{stamp}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    cfg.progress(f"drill {cfg.fault}: {FAULTS[cfg.fault]}; folder {folder}")
    figures = dbfail.run(standby=cfg.fault == "database-down", hang=cfg.fault == "database-hang",
                         before_s=cfg.warmup_s, outage_s=cfg.fault_s, after_s=cfg.after_s, workers=cfg.workers,
                         progress=cfg.progress)
    met = targets(figures, standby=cfg.fault == "database-down")
    (folder / "scorecard.json").write_text(json.dumps({"fault": cfg.fault, "figures": figures, "targets": met,
                                                       "passed": all(met.values())}, ensure_ascii=False, indent=2),
                                           encoding="utf-8")
    return figures, met, folder
