"""Fill a migrated, seeded database with N orders fast: set-based INSERT … SELECT in SQL, not the API.

Each order gets one line and two transitions (created, then delivered), so a million orders is four
million rows across the three busiest tables. Used by `bench/backup_restore.py`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from waimai.core.database import Database
from waimai.core.migrate import upgrade
from waimai.seed import seed_demo

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

_SQLITE_SERIES = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n) "
_PG_SERIES = "WITH n(i) AS (SELECT generate_series(1, :n)) "


def fill(url: str, n_orders: int) -> None:
    """Migrate and seed `url`, then add `n_orders` delivered orders."""
    db = Database(url)
    upgrade(db.engine)
    with db.session() as s:
        seed_demo(s)
        s.commit()
    db.dispose()
    add_orders(url, n_orders)


def add_orders(url: str, n_orders: int) -> None:
    """Add `n_orders` delivered orders (ids after any existing ones) to a seeded database."""
    db = Database(url)
    pg = db.dialect == "postgresql"
    series = _PG_SERIES if pg else _SQLITE_SERIES
    # Timestamps as text SQLAlchemy reads back on SQLite; a real timestamptz on PostgreSQL.
    at = ("(:t0 + ((:base + n.i) * interval '30 seconds'))" if pg
          else "strftime('%Y-%m-%d %H:%M:%f', :t0, '+' || ((:base + n.i) * 30) || ' seconds')")
    t0 = T0 if pg else T0.strftime("%Y-%m-%d %H:%M:%S")
    pad = "lpad((:base + n.i)::text, 10, '0')" if pg else "printf('%010d', :base + n.i)"
    proof = "lpad((n.i % 10000)::text, 4, '0')" if pg else "printf('%04d', n.i % 10000)"
    with db.engine.begin() as c:
        cust = c.execute(text("SELECT id FROM users WHERE role = 'customer' ORDER BY id LIMIT 1")).scalar_one()
        base = c.execute(text("SELECT coalesce(max(id), 0) FROM orders")).scalar_one()
        items = c.execute(text("SELECT id, merchant_id, name, price_fen FROM menu_items ORDER BY id")).all()
        n_points = c.execute(text("SELECT count(*) FROM delivery_points")).scalar_one()
        c.execute(text("CREATE TEMPORARY TABLE bench_items (k INTEGER PRIMARY KEY, id INTEGER, merchant_id INTEGER, "
                       "name VARCHAR(80), price_fen INTEGER)"))
        c.execute(text("INSERT INTO bench_items VALUES (:k, :id, :m, :name, :p)"),
                  [{"k": k, "id": i.id, "m": i.merchant_id, "name": i.name, "p": i.price_fen}
                   for k, i in enumerate(items)])
        params = {"n": n_orders, "base": base, "cust": cust, "np": n_points, "ni": len(items), "t0": t0}
        join = "JOIN bench_items b ON b.k = (n.i % :ni)"
        c.execute(text(
            series + "INSERT INTO orders (id, number, customer_id, merchant_id, delivery_point_id, status, "
            "payment_method, source, subtotal_fen, delivery_fee_fen, discount_fen, total_fen, proof_code, note, "
            "contact_phone, promised_at, delivered_at, created_at, updated_at) "
            f"SELECT :base + n.i, 'BN' || {pad}, :cust, b.merchant_id, 1 + (n.i % :np), 'delivered', "
            "CASE WHEN n.i % 3 = 0 THEN 'cod' ELSE 'gateway' END, 'app', b.price_fen, 200, 0, b.price_fen + 200, "
            f"{proof}, '', '13800000001', {at}, {at}, {at}, {at} FROM n {join}"), params)
        c.execute(text(
            series + "INSERT INTO order_lines (order_id, item_id, name, unit_price_fen, quantity, options, "
            "line_total_fen, stock_reserved) "
            f"SELECT :base + n.i, b.id, b.name, b.price_fen, 1, '[]', b.price_fen, false FROM n {join}"), params)
        for frm, to in ((None, "created"), ("created", "delivered")):
            c.execute(text(
                series + "INSERT INTO order_transitions (order_id, from_status, to_status, actor_role, at) "
                f"SELECT :base + n.i, :frm, :to, 'system', {at} FROM n"), {**params, "frm": frm, "to": to})
        c.execute(text("DROP TABLE bench_items"))
        if pg:
            for table in ("orders", "order_lines", "order_transitions"):
                c.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))"))
    if pg:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
    db.checkpoint()
    db.dispose()
