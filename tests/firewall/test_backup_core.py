"""Backups without a database server: the artefact pipeline, encryption, tampering, the cron schedule and
the retention policy."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import pytest

from waimai.core.timeutil import LOCAL
from waimai.firewall.recovery import artefact
from waimai.firewall.recovery.backup import Retention, select_keep
from waimai.firewall.recovery.catalog import Manifest, Verification
from waimai.firewall.recovery.errors import BackupError, ChecksumMismatch
from waimai.firewall.recovery.schedule import Cron

DATA = os.urandom(300_000) + b"orders " * 2_000_000  # some incompressible, mostly compressible; > 3 records


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
@pytest.mark.parametrize("encrypted", [False, True])
def test_pack_unpack_round_trip(tmp_path: Path, compression: str, encrypted: bool) -> None:
    key = artefact.parse_key(artefact.new_key()) if encrypted else None
    art, raw = tmp_path / "a.bin", tmp_path / "raw"
    seen: list[int] = []
    p = artefact.pack(io.BytesIO(DATA), art, compression=compression, key=key, progress=seen.append)
    assert p.raw_size == len(DATA) and p.size == art.stat().st_size < len(DATA) / 3 and seen[-1] == len(DATA)
    assert p.sha256 == artefact.sha256_file(art)
    artefact.check(art, sha256=p.sha256, size=p.size)
    assert artefact.unpack(art, raw, compression=compression, key=key) == len(DATA)
    assert raw.read_bytes() == DATA
    if encrypted:
        assert art.read_bytes().startswith(artefact.MAGIC) and b"orders orders" not in art.read_bytes()


def test_tampering_is_caught_by_the_checksum_and_by_the_cipher(tmp_path: Path) -> None:
    key = artefact.parse_key(artefact.new_key())
    art = tmp_path / "a.bin"
    p = artefact.pack(io.BytesIO(DATA), art, compression="zstd", key=key)
    blob = bytearray(art.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    art.write_bytes(bytes(blob))
    with pytest.raises(ChecksumMismatch, match="does not match its sha256"):
        artefact.check(art, sha256=p.sha256, size=p.size)
    with pytest.raises(BackupError, match="Decryption failed"):
        artefact.unpack(art, tmp_path / "raw", compression="zstd", key=key)
    art.write_bytes(bytes(blob[:-100]))  # truncated
    with pytest.raises(ChecksumMismatch, match="bytes, the manifest says"):
        artefact.check(art, sha256=p.sha256, size=p.size)


def test_wrong_key_and_bad_key_text(tmp_path: Path) -> None:
    art = tmp_path / "a.bin"
    artefact.pack(io.BytesIO(DATA), art, compression="gzip", key=artefact.parse_key(artefact.new_key()))
    other = artefact.parse_key(artefact.new_key())
    with pytest.raises(BackupError, match="not the one this backup was made with"):
        artefact.unpack(art, tmp_path / "raw", compression="gzip", key=other)
    secret = "not-a-key-but-a-secret-phrase"
    with pytest.raises(BackupError) as exc:
        artefact.parse_key(secret)
    assert secret not in exc.value.message and "waimai backup keygen" in exc.value.message
    assert artefact.key_id(other) != artefact.key_id(artefact.parse_key(artefact.new_key()))


def test_cron_schedule() -> None:
    utc = dt.UTC
    hourly = Cron.parse("0 * * * *")
    assert hourly.next_after(dt.datetime(2026, 3, 1, 10, 0, tzinfo=utc)) == dt.datetime(2026, 3, 1, 11, 0, tzinfo=utc)
    assert hourly.next_after(dt.datetime(2026, 3, 1, 10, 59, 59, tzinfo=utc)) == dt.datetime(2026, 3, 1, 11, 0,
                                                                                            tzinfo=utc)
    # campus time: 04:00 in Shanghai is 20:00 UTC the day before
    assert Cron.parse("0 4 * * *").next_after(dt.datetime(2026, 3, 1, 12, 0, tzinfo=utc)) == dt.datetime(
        2026, 3, 1, 20, 0, tzinfo=utc)
    assert Cron.parse("*/15 9-10 * * 1-5").next_after(dt.datetime(2026, 3, 7, 0, 0, tzinfo=utc)) == dt.datetime(
        2026, 3, 9, 1, 0, tzinfo=utc)  # Saturday → Monday 09:00 campus time
    assert Cron.parse("@weekly").text == "@weekly"
    # what teams write: names of days, the last day of the month, yearly
    assert Cron.parse("30 3 * * MON-FRI").next_after(dt.datetime(2026, 3, 7, 0, 0, tzinfo=utc)) == dt.datetime(
        2026, 3, 8, 19, 30, tzinfo=utc)  # Saturday → Monday 03:30 campus time (Sunday 19:30 UTC)
    assert Cron.parse("0 2 L * *").next_after(dt.datetime(2026, 2, 10, tzinfo=utc)) == dt.datetime(
        2026, 2, 27, 18, 0, tzinfo=utc)  # 28 February 02:00 campus time
    assert Cron.parse("@yearly").next_after(dt.datetime(2026, 3, 1, tzinfo=utc)) == dt.datetime(
        2026, 12, 31, 16, 0, tzinfo=utc)
    for bad in ("0 * * *", "61 * * * *", "a * * * *", "0 25 * * *", "* * * * * *", "@sometimes"):
        with pytest.raises(ValueError, match="cron"):
            Cron.parse(bad)


def _m(i: int, at: dt.datetime, **kw: object) -> Manifest:
    base = dict(id=f"b{i:04d}", kind="scheduled", created_at=at, engine="sqlite", database="x", schema_version="1",
                format="sqlite3-backup", compression="zstd", status="complete")
    base.update(kw)
    return Manifest(**base)  # type: ignore[arg-type]


def test_retention_keeps_hourly_daily_weekly() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    items = [_m(i, start + dt.timedelta(hours=i)) for i in range(24 * 70)]  # 70 days of hourly backups
    keep = select_keep(items, Retention(hourly=24, daily=14, weekly=8))
    newest = sorted(items, key=lambda m: m.created_at)[-1]
    assert "hourly" in keep[newest.id]
    assert sum("hourly" in r for r in keep.values()) == 24
    assert sum("daily" in r for r in keep.values()) == 14
    assert sum("weekly" in r for r in keep.values()) == 8
    by_id = {m.id: m.created_at.astimezone(LOCAL) for m in items}
    assert len({by_id[i].date() for i, r in keep.items() if "daily" in r}) == 14
    assert len({by_id[i].isocalendar()[:2] for i, r in keep.items() if "weekly" in r}) == 8
    assert len(keep) < 24 + 14 + 8  # the newest of today and of this week count for several rules
    # an incomplete backup does not count and is not kept; the newest verified one always is
    old_verified = items[5].model_copy(update={"verification": Verification(status="passed")})
    broken = _m(99999, newest.created_at + dt.timedelta(minutes=5), status="incomplete")
    keep = select_keep([*items[:5], old_verified, *items[6:], broken], Retention(hourly=24, daily=14, weekly=8))
    assert broken.id not in keep and keep[old_verified.id] == ["newest verified"]
    # with no complete backup at all nothing is thrown away
    assert set(select_keep([broken], Retention(0, 0, 0))) == {broken.id}
