"""The S3-compatible target against a local S3 server over real HTTP (moto's server standing in for
Alibaba OSS), with OSS's virtual-hosted addressing: stored, listed, read back after losing the local
disk, pruned, and a backup that does not reach the bucket is not complete."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.firewall.backup_support import (  # noqa: F401 - fixtures
    bucket,
    config,
    localhost_dns,
    s3_client,
    s3_endpoint,
)
from waimai.core.database import Database
from waimai.firewall.recovery.backup import Retention, create_backup, prune, verify_backup
from waimai.firewall.recovery.errors import BackupRefused
from waimai.firewall.recovery.restore import restore_backup
from waimai.firewall.recovery.targets import S3Config, S3Target


def test_virtual_hosted_addressing_over_http(bucket: S3Config, tmp_path: Path) -> None:  # noqa: F811
    target = S3Target("s3", bucket)
    hosts: list[str] = []
    target.client.meta.events.register("before-send.s3", lambda request, **_: hosts.append(request.url))
    f = tmp_path / "x.bin"
    f.write_bytes(b"x" * 1000)
    target.put_file(f, "x.bin", sha256="abc")
    assert target.size("x.bin") == 1000 and target.keys() == ["x.bin"] and target.size("nope") is None
    assert hosts and all(u.startswith(f"http://{bucket.bucket}.s3.localhost:") for u in hosts)
    head = s3_client(bucket).head_object(Bucket=bucket.bucket, Key="campus/backups/x.bin")
    assert head["Metadata"]["sha256"] == "abc"
    target.delete("x.bin")
    assert target.keys() == []


def test_backup_in_both_targets_then_restore_from_the_bucket_alone(bucket: S3Config, sqlite_url: str,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    cfg = config(tmp_path, s3=bucket)
    m = create_backup(cfg, sqlite_url)
    assert m.status == "complete" and {k: v.status for k, v in m.targets.items()} == {"local": "stored",
                                                                                      "s3": "stored"}
    client = s3_client(bucket)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket.bucket)["Contents"]}
    assert keys == {f"campus/backups/{m.artefact}", f"campus/backups/{m.manifest_key}"}
    remote = json.loads(client.get_object(Bucket=bucket.bucket, Key=f"campus/backups/{m.manifest_key}")["Body"].read())
    assert remote["sha256"] == m.sha256 and remote["status"] == "complete"
    m = verify_backup(cfg, sqlite_url, m.id)
    assert m.verification.status == "passed" and m.verification.source == "local"
    assert any(c.name == "copy in s3" and c.ok for c in m.verification.checks)

    # the first disk is lost: the index is rebuilt from the bucket and the restore reads from it
    shutil.rmtree(cfg.directory)
    assert cfg.catalog().all() == []
    assert cfg.catalog().sync() == 1
    db = Database(sqlite_url)
    try:
        result = restore_backup(cfg, db, m.id)
        assert result.status == "restored" and result.restored_from == "s3"
    finally:
        db.dispose()


def test_backup_not_complete_when_the_bucket_fails(s3_endpoint: str, localhost_dns: None,  # noqa: F811
                                                   sqlite_url: str, tmp_path: Path) -> None:
    missing = S3Config(bucket="no-such-bucket-here", endpoint_url=s3_endpoint, access_key_id="k",
                       secret_access_key="s", addressing_style="virtual")
    cfg = config(tmp_path, s3=missing)
    m = create_backup(cfg, sqlite_url)
    assert m.status == "incomplete" and m.targets["local"].status == "stored"
    assert m.targets["s3"].status == "failed" and "NoSuchBucket" in (m.targets["s3"].error or "")
    assert cfg.catalog().get(m.id).status == "incomplete"
    db = Database(sqlite_url)
    try:
        with pytest.raises(BackupRefused, match="incomplete"):
            restore_backup(cfg, db, m.id)
    finally:
        db.dispose()
    unreachable = S3Config(bucket="any-bucket", endpoint_url="http://127.0.0.1:9", access_key_id="k",
                           secret_access_key="s", addressing_style="path")
    m = create_backup(config(tmp_path, s3=unreachable), sqlite_url)
    assert m.status == "incomplete" and "failed" in (m.targets["s3"].error or "")


def test_prune_deletes_from_every_target(bucket: S3Config, sqlite_url: str, tmp_path: Path) -> None:  # noqa: F811
    cfg = config(tmp_path, s3=bucket, retention=Retention(hourly=1, daily=0, weekly=0))
    old = verify_backup(cfg, sqlite_url, create_backup(cfg, sqlite_url).id)
    middle = create_backup(cfg, sqlite_url)
    newest = create_backup(cfg, sqlite_url)
    dry = prune(cfg, dry_run=True)
    assert dry.deleted == [middle.id] and len(cfg.catalog().all()) == 3
    res = prune(cfg)
    assert res.deleted == [middle.id] and res.kept[old.id] == ["newest verified"] and "hourly" in res.kept[newest.id]
    keys: Any = {o["Key"].rsplit("/", 1)[-1] for o in s3_client(bucket).list_objects_v2(Bucket=bucket.bucket)["Contents"]}
    assert not any(k.startswith(middle.id) for k in keys) and sum(k.startswith(newest.id) for k in keys) == 2
    assert not (cfg.directory / middle.artefact).exists()
    assert [m.id for m in cfg.catalog().all()] == [newest.id, old.id]
