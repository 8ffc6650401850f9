"""The database dies under order load: seconds until orders are accepted again, lost and duplicated orders.

    python bench/db_failover.py --fault failover [--before 10] [--after 30] [--workers 4]
    python bench/db_failover.py --fault outage  [--outage 60]     (no standby: stopped, then back)
    python bench/db_failover.py --fault hang    [--outage 60]     (SIGSTOP: accepts, answers nothing)

Builds its own database on loopback ports under a temp directory (a pg_auto_failover formation of a
monitor, a primary and a standby for `failover`; one server otherwise; never the machine's shared
server), starts `waimai serve` on it with a multi-host URL (`target_session_attrs=read-write`), and has
customers order cash on delivery, each retrying with the same Idempotency-Key until acknowledged. Prints
the seconds from the fault to the first order placed in the database again and to the first order
acknowledged (202 from the spool counts), the orders acknowledged, and the ledger checked against the
database: lost (must be 0) and duplicated (must be 0). Run as root, it runs the servers as `postgres`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waimai.core.benchenv import environment, header  # noqa: E402
from waimai.drill.dbfail import run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fault", choices=["failover", "outage", "hang"], default="failover")
    ap.add_argument("--before", type=float, default=10.0, help="seconds of load before the fault")
    ap.add_argument("--after", type=float, default=30.0, help="seconds of load after the fault (or its end)")
    ap.add_argument("--outage", type=float, default=60.0, help="outage/hang: seconds the database stays away")
    ap.add_argument("--workers", type=int, default=4, help="customers ordering at once")
    ap.add_argument("--smoke", action="store_true",
                    help="a 3 s outage with 2 customers (no standby to build): only checks the bench works")
    a = ap.parse_args()
    if a.smoke:
        a.fault, a.before, a.after, a.outage, a.workers = "outage", 2.0, 6.0, 3.0, 2
    print(header(environment(extra={"fault": a.fault, "customers": a.workers,
                                    "database": "a private PostgreSQL on loopback (built by the bench)"})),
          flush=True)
    figures = run(standby=a.fault == "failover", hang=a.fault == "hang", before_s=a.before, after_s=a.after,
                  outage_s=a.outage, workers=a.workers, progress=lambda m: print(m, flush=True))
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    ok = figures["lost"] == 0 and figures["duplicated"] == 0 and figures["spooled_still_pending"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
