"""A simulated lunch hour on a running Waimai, through its public API, to watch in the browser.

The customer places orders on a lunch-peak curve, the kitchens (ops) accept them and mark them ready after
their prep time, the service's own dispatcher assigns riders, and the riders ride: each posts its position as
it goes (which live tracking fans out to the customer's order page), picks up at the merchant and delivers with
the customer's proof code. Time runs `speed` times faster than the wall clock for everything the driver does
(orders, kitchens, riding); the service keeps its own clock. Nothing here reaches into the database: what the
browser shows is what a real lunch hour would show.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import numpy as np
import typer

DONE = ("delivered", "failed", "cancelled", "rejected", "refunded")


def demo_rider_phones() -> list[str]:
    """The seeded riders' sign-in phones (waimai/seed.py): the demo rider first."""
    return ["13800000003", *(f"1390000{i:04d}" for i in range(15))]


@dataclass
class LunchConfig:
    orders: int = 60
    minutes: float = 60.0  # the lunch hour, in simulated minutes
    speed: float = 10.0  # simulated minutes per wall-clock minute
    riders: int = 8
    seed: int = 0
    tick_s: float = 0.5
    grace_s: float = 120.0  # wall-clock seconds to wait for the last deliveries
    customer: str = "13800000001"
    ops: str = "13800000009"
    rider_phones: list[str] = field(default_factory=demo_rider_phones)
    password: str = "waimai-demo"  # noqa: S105 - the seeded demo accounts' password


@dataclass
class Placed:
    id: int
    proof: str
    merchant_id: int
    point_id: int
    placed_at: float  # wall clock
    ready_due: float
    status: str = "cod_confirmed"
    delivered_at: float | None = None


@dataclass
class RiderSim:
    id: int
    phone: str
    token: str
    x: float
    y: float
    was_on_shift: bool
    moved: bool = False


@dataclass
class LunchReport:
    placed: int = 0
    delivered: int = 0
    not_delivered: list[int] = field(default_factory=list)
    ctd_minutes: list[float] = field(default_factory=list)  # simulated click-to-door
    per_rider: dict[int, int] = field(default_factory=dict)
    reassigned: int = 0
    wall_s: float = 0.0
    first_order: int | None = None

    @property
    def all_delivered(self) -> bool:
        return self.placed > 0 and self.delivered == self.placed


class LunchHour:
    def __init__(self, client: httpx.Client, cfg: LunchConfig, *, on_tick: Callable[[], object] | None = None,
                 say: Callable[[str], object] = print) -> None:
        from waimai.platform.ordering.service import RIDER_SPEED_M_PER_MIN

        self.c, self.cfg, self.on_tick, self.say = client, cfg, on_tick, say
        self.m_per_min = float(RIDER_SPEED_M_PER_MIN)  # the speed ordering promises with
        self.rng = np.random.default_rng(cfg.seed)
        self.orders: dict[int, Placed] = {}
        self.report = LunchReport()

    # --- plumbing ------------------------------------------------------------------------------------------

    def _login(self, phone: str) -> str:
        r = self.c.post("/api/v1/auth/login", json={"phone": phone, "password": self.cfg.password})
        if r.status_code != 200:
            raise RuntimeError(f"cannot sign in as {phone}: {r.status_code} {r.text[:200]}")
        return str(r.json()["access_token"])

    def _call(self, method: str, path: str, token: str, body: Any = None, **headers: str) -> httpx.Response:
        return self.c.request(method, path, json=body, headers={"Authorization": f"Bearer {token}", **headers})

    def _ok(self, r: httpx.Response, what: str) -> Any:
        if r.status_code >= 400:
            raise RuntimeError(f"{what}: {r.status_code} {r.text[:300]}")
        return r.json()

    # --- set-up --------------------------------------------------------------------------------------------

    def _setup(self) -> None:
        cfg = self.cfg
        self.customer, self.ops = self._login(cfg.customer), self._login(cfg.ops)
        merchants = self._ok(self.c.get("/api/v1/merchants"), "merchants")
        self.merchants = {m["id"]: m for m in merchants if m["open_now"] and m["status"] == "open"}
        self.menus: dict[int, list[dict[str, Any]]] = {}
        for mid in list(self.merchants):
            detail = self._ok(self.c.get(f"/api/v1/merchants/{mid}"), "menu")
            items = [i for cat in detail["categories"] for i in cat["items"] if i["available"] and not i["sold_out"]]
            if items:
                self.menus[mid] = items
            else:
                self.merchants.pop(mid)
        self.points = self._ok(self.c.get("/api/v1/delivery-points"), "delivery points")
        if not self.merchants or not self.points:
            raise RuntimeError("no open merchant or no delivery point: seed the demo campus first")
        self.riders: dict[int, RiderSim] = {}
        for phone in cfg.rider_phones[:cfg.riders]:
            token = self._login(phone)
            me = self._ok(self._call("GET", "/api/v1/riders/me", token), "rider")
            self._ok(self._call("POST", "/api/v1/riders/me/shift", token,
                                {"on_shift": True, "hours": max(0.5, min(12.0, cfg.minutes / cfg.speed / 60 + 1))}),
                     "shift")
            x, y = me["x"] if me["x"] is not None else 1000.0, me["y"] if me["y"] is not None else 800.0
            self.riders[me["id"]] = RiderSim(me["id"], phone, token, x, y, me["on_shift"])
            self._call("POST", "/api/v1/riders/me/position", token, {"x": x, "y": y})
        minute = np.sort(self.rng.normal(cfg.minutes / 2, cfg.minutes / 5, cfg.orders).clip(0, cfg.minutes))
        self.due = [float(m) * 60.0 / cfg.speed for m in minute]  # wall-clock seconds after the start

    # --- one tick ------------------------------------------------------------------------------------------

    def _place(self, now: float) -> None:
        mid = int(self.rng.choice(sorted(self.merchants)))
        item = self.menus[mid][int(self.rng.integers(len(self.menus[mid])))]
        options = [g["choices"][0]["name"] for g in item["options"] if g["required"] and g["choices"]]
        point = self.points[int(self.rng.integers(len(self.points)))]
        r = self._call("POST", "/api/v1/orders", self.customer,
                       {"merchant_id": mid, "delivery_point_id": point["id"], "payment_method": "cod",
                        "items": [{"item_id": item["id"], "quantity": 1, "options": options}]},
                       **{"Idempotency-Key": uuid.uuid4().hex})
        if r.status_code in (409, 422):  # sold out, shop just closed: a customer would pick something else
            self.say(f"order not placed ({r.json()['error']['message']})")
            return
        o = self._ok(r, "place order")
        prep = self.merchants[mid]["prep_minutes"] * 60.0 / self.cfg.speed
        self.orders[o["id"]] = Placed(o["id"], o["proof_code"], mid, point["id"], now, now + prep, o["status"])
        self.report.placed += 1
        if self.report.first_order is None:
            self.report.first_order = o["id"]
            self.say(f"first order #{o['id']}: sign in as {self.cfg.customer} and open /orders/{o['id']} "
                     f"to follow it live")

    def _kitchens(self, now: float) -> None:
        for o in self.orders.values():
            steps = {"cod_confirmed": "accept", "paid": "accept", "accepted": "preparing"}
            if o.status in steps:
                o.status = self._ok(self._call("POST", f"/api/v1/orders/{o.id}/{steps[o.status]}", self.ops),
                                    "kitchen")["status"]
            if o.status == "preparing" and now >= o.ready_due:
                o.status = self._ok(self._call("POST", f"/api/v1/orders/{o.id}/ready", self.ops), "ready")["status"]

    def _reassign_strays(self) -> None:
        """An order the dispatcher gave to a rider this run does not drive goes to the least busy of ours."""
        load = {rid: 0 for rid in self.riders}
        stray = []
        for o in self._ok(self._call("GET", "/api/v1/orders?limit=200", self.ops), "orders"):
            if o["id"] in self.orders and o["rider_id"] is not None and o["status"] not in DONE:
                if o["rider_id"] in load:
                    load[o["rider_id"]] += 1
                elif o["status"] != "picked_up":
                    stray.append(o["id"])
        for oid in stray:
            rid = min(load, key=lambda k: load[k])
            if self._call("POST", f"/api/v1/orders/{oid}/assign", self.ops, {"rider_id": rid}).status_code == 200:
                load[rid] += 1
                self.report.reassigned += 1

    def _ride(self, r: RiderSim, dt_s: float, now: float) -> None:
        tasks = [t for t in self._ok(self._call("GET", "/api/v1/riders/me/tasks", r.token), "tasks")
                 if t["id"] in self.orders]  # only this run's orders (we hold their proof codes)
        if not tasks:
            return
        carrying = [t for t in tasks if t["status"] == "picked_up"]
        if carrying:
            t = min(carrying, key=lambda t: self._dist(r, self._point(t["delivery_point_id"])))
            target, kind = self._point(t["delivery_point_id"]), "drop"
        else:
            t = min(tasks, key=lambda t: (t["status"] != "ready", t["promised_at"] or ""))
            m = self.merchants.get(t["merchant_id"])
            target, kind = ((m["x"], m["y"]) if m else (r.x, r.y)), "pickup"
        step = self.m_per_min * self.cfg.speed * dt_s / 60.0
        d = self._dist(r, target)
        if d > 0.5:
            f = min(1.0, step / d)
            r.x, r.y = r.x + (target[0] - r.x) * f, r.y + (target[1] - r.y) * f
            self._call("POST", "/api/v1/riders/me/position", r.token, {"x": round(r.x, 1), "y": round(r.y, 1)})
        if self._dist(r, target) > 0.5:
            return
        if kind == "pickup":
            for t2 in tasks:
                if t2["status"] == "ready" and t2["merchant_id"] == t["merchant_id"]:
                    self._ok(self._call("POST", f"/api/v1/orders/{t2['id']}/pickup", r.token), "pickup")
        else:
            for t2 in carrying:
                if t2["delivery_point_id"] == t["delivery_point_id"]:
                    o = self.orders[t2["id"]]
                    self._ok(self._call("POST", f"/api/v1/orders/{o.id}/deliver", r.token, {"proof_code": o.proof}),
                             "deliver")
                    o.status, o.delivered_at = "delivered", now
                    self.report.delivered += 1
                    self.report.ctd_minutes.append((now - o.placed_at) * self.cfg.speed / 60.0)
                    self.report.per_rider[r.id] = self.report.per_rider.get(r.id, 0) + 1

    def _point(self, pid: int) -> tuple[float, float]:
        p = next(p for p in self.points if p["id"] == pid)
        return p["x"], p["y"]

    @staticmethod
    def _dist(r: RiderSim, target: tuple[float, float]) -> float:
        return math.hypot(target[0] - r.x, target[1] - r.y)

    # --- the run -------------------------------------------------------------------------------------------

    def run(self) -> LunchReport:
        cfg = self.cfg
        self._setup()
        self.say(f"lunch hour: {cfg.orders} orders over {cfg.minutes:g} simulated minutes at {cfg.speed:g}x "
                 f"({cfg.minutes / cfg.speed:.1f} min of wall clock), {len(self.riders)} riders")
        start = last = time.monotonic()
        nxt, deadline, tick = 0, None, 0
        try:
            while True:
                now = time.monotonic() - start
                dt_s, last = time.monotonic() - last, time.monotonic()
                while nxt < len(self.due) and self.due[nxt] <= now:
                    self._place(now)
                    nxt += 1
                self._kitchens(now)
                if self.on_tick is not None:
                    self.on_tick()
                if tick % 4 == 0:
                    self._reassign_strays()
                for r in self.riders.values():
                    self._ride(r, dt_s, now)
                tick += 1
                open_ = [o for o in self.orders.values() if o.status not in DONE]
                if nxt >= len(self.due):
                    if not open_:
                        break
                    deadline = deadline or now + cfg.grace_s + cfg.minutes * 60.0 / cfg.speed
                    if now > deadline:
                        break
                time.sleep(max(0.0, cfg.tick_s - (time.monotonic() - start - now)))
        finally:
            for r in self.riders.values():
                if not r.was_on_shift:
                    self._call("POST", "/api/v1/riders/me/shift", r.token, {"on_shift": False})
        self.report.wall_s = time.monotonic() - start
        self.report.not_delivered = sorted(o.id for o in self.orders.values() if o.status != "delivered")
        return self.report


def lunch_hour_command(
    target: Annotated[str, typer.Option("--target", help="base URL of a running Waimai (`make run`)")] = (
        "http://127.0.0.1:8000"),
    orders: Annotated[int, typer.Option("--orders", min=1, max=2000)] = 60,
    minutes: Annotated[float, typer.Option("--minutes", min=1, max=240, help="simulated length")] = 60.0,
    speed: Annotated[float, typer.Option("--speed", min=1, max=600, help="simulated minutes per real minute")] = 10.0,
    riders: Annotated[int, typer.Option("--riders", min=1, max=16, help="demo riders to put on shift")] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Run a lunch hour on a running service (the demo campus): orders, kitchens and riders through the API,
    the service's dispatcher assigning; follow any order live in the browser."""
    cfg = LunchConfig(orders=orders, minutes=minutes, speed=speed, riders=riders, seed=seed)
    with httpx.Client(base_url=target.rstrip("/"), timeout=30.0) as client:
        try:
            rep = LunchHour(client, cfg).run()
        except (RuntimeError, httpx.HTTPError) as exc:
            print(f"lunch hour stopped: {exc}")
            raise typer.Exit(2) from None
    ctd = np.array(rep.ctd_minutes) if rep.ctd_minutes else np.zeros(1)
    print(f"{rep.delivered}/{rep.placed} orders delivered in {rep.wall_s:.0f} s of wall clock; click-to-door "
          f"(simulated) mean {ctd.mean():.1f} min, p90 {np.percentile(ctd, 90):.0f}, max {ctd.max():.0f}; "
          f"riders used {len(rep.per_rider)}; reassigned by hand {rep.reassigned}")
    if not rep.all_delivered:
        print(f"not delivered: {rep.not_delivered}")
        raise typer.Exit(1)
