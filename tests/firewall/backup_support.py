"""Shared by the backup tests: a local S3-compatible server (moto's, over real HTTP), DNS for
`*.localhost` so virtual-hosted addressing reaches it, and a seeded database with a few orders."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from fastapi.testclient import TestClient

from tests.conftest import Api, make_settings
from waimai.app import create_app
from waimai.firewall.recovery.backup import BackupConfig
from waimai.firewall.recovery.targets import S3Config

KEY_ID, SECRET = "test-key-id", "test-secret"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real HTTP server speaking the S3 API on a free port of this machine."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _host, port = server.get_host_and_port()
    yield f"http://s3.localhost:{port}"  # virtual-hosted: BUCKET.s3.localhost, like BUCKET.oss-cn-*.aliyuncs.com
    server.stop()


@pytest.fixture
def localhost_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """`*.localhost` is loopback (RFC 6761); this machine's resolver does not say so, so we do."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def bucket(s3_endpoint: str, localhost_dns: None) -> S3Config:
    name = f"waimai-{uuid.uuid4().hex[:10]}"
    cfg = S3Config(bucket=name, endpoint_url=s3_endpoint, prefix="campus/backups/", access_key_id=KEY_ID,
                   secret_access_key=SECRET, addressing_style="virtual")
    s3_client(cfg).create_bucket(Bucket=name)
    return cfg


def s3_client(cfg: S3Config) -> Any:
    return boto3.client("s3", endpoint_url=cfg.endpoint_url, region_name="us-east-1", aws_access_key_id=KEY_ID,
                        aws_secret_access_key=SECRET, config=Config(s3={"addressing_style": cfg.addressing_style}))


def config(tmp_path: Path, **kw: Any) -> BackupConfig:
    return BackupConfig(directory=tmp_path / "backups", **kw)


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[Api]:
    """The app on a fresh seeded database (SQLite or PostgreSQL), with the API helper."""
    app = create_app(make_settings(db_url, backup_dir=str(tmp_path / "backups")), background=False)
    with TestClient(app) as c:
        yield Api(c)


def place(api: Api, n: int = 1) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        r = api.place()
        assert r.status_code == 201, r.text  # type: ignore[attr-defined]
        out.append(r.json())  # type: ignore[attr-defined]
    return out
