"""Where artefacts and their manifests are kept: local directories and S3-compatible object storage.

Alibaba Cloud OSS speaks the S3 API with virtual-hosted addressing (`https://BUCKET.oss-cn-hangzhou.aliyuncs.com`);
MinIO and most local servers want path addressing — `addressing_style` chooses.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from waimai.firewall.recovery.errors import TargetError

Progress = Callable[[int], None]


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    prefix: str = "waimai-backups/"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    addressing_style: str = "virtual"  # virtual (OSS, AWS) | path (MinIO, most local servers) | auto

    def __repr__(self) -> str:  # never show the secret
        return f"S3Config(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r}, prefix={self.prefix!r})"


class Target(Protocol):
    name: str

    def describe(self) -> str: ...

    def put_file(self, local: Path, key: str, progress: Progress | None = None,
                 sha256: str | None = None) -> None: ...

    def get_file(self, key: str, local: Path, progress: Progress | None = None) -> None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def size(self, key: str) -> int | None: ...

    def keys(self) -> list[str]: ...

    def delete(self, key: str) -> None: ...


class LocalTarget:
    """A directory (ideally on a second disk). Writes go to a temporary name, are fsynced, then renamed."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root

    def describe(self) -> str:
        return f"directory {self.root}"

    def path(self, key: str) -> Path:
        return self.root / key

    def _dir(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TargetError(f"{self.name}: cannot create {self.root}: {exc.strerror}") from None

    def put_file(self, local: Path, key: str, progress: Progress | None = None,
                 sha256: str | None = None) -> None:
        self._dir()
        dst = self.path(key)
        tmp = dst.with_name(dst.name + ".partial")
        try:
            if local.resolve().parent == self.root.resolve():
                os.replace(local, tmp)  # staged in this very directory: no copy
            else:
                with open(local, "rb") as src, open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                                                     "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp, dst)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TargetError(f"{self.name}: cannot write {dst.name}: {exc.strerror or exc}") from None
        if progress is not None:
            progress(dst.stat().st_size)

    def get_file(self, key: str, local: Path, progress: Progress | None = None) -> None:
        src = self.path(key)
        if not src.is_file():
            raise TargetError(f"{self.name}: {key} is missing")
        if src.resolve() != local.resolve():
            shutil.copyfile(src, local)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._dir()
        dst = self.path(key)
        tmp = dst.with_name(dst.name + ".partial")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dst)
        except OSError as exc:
            raise TargetError(f"{self.name}: cannot write {key}: {exc.strerror or exc}") from None

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except OSError as exc:
            raise TargetError(f"{self.name}: cannot read {key}: {exc.strerror or exc}") from None

    def size(self, key: str) -> int | None:
        p = self.path(key)
        return p.stat().st_size if p.is_file() else None

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_file())

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


def _adding(progress: Progress | None) -> Callable[[int], None]:
    """boto3 reports bytes per chunk; progress wants the running total."""
    done = 0

    def cb(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done)

    return cb


class S3Target:
    """An S3-compatible bucket through boto3 (multipart uploads for large artefacts)."""

    def __init__(self, name: str, cfg: S3Config) -> None:
        import boto3
        from botocore.config import Config

        self.name = name
        self.cfg = cfg
        self.prefix = cfg.prefix.lstrip("/")
        if self.prefix and not self.prefix.endswith("/"):
            self.prefix += "/"
        self.client: Any = boto3.client(
            "s3", endpoint_url=cfg.endpoint_url, region_name=cfg.region,
            aws_access_key_id=cfg.access_key_id, aws_secret_access_key=cfg.secret_access_key,
            config=Config(s3={"addressing_style": cfg.addressing_style}, connect_timeout=5, read_timeout=60,
                          retries={"max_attempts": 3, "mode": "standard"}))

    def describe(self) -> str:
        where = self.cfg.endpoint_url or "AWS"
        return f"s3://{self.cfg.bucket}/{self.prefix} at {where} ({self.cfg.addressing_style} addressing)"

    def _fail(self, what: str, exc: Exception) -> TargetError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            detail = f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip(": ")
        else:
            detail = f"{exc.__class__.__name__}: {exc}"
        return TargetError(f"{self.name}: {what} failed ({detail})")

    def _transfer(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=16 << 20, max_concurrency=4)

    def put_file(self, local: Path, key: str, progress: Progress | None = None,
                 sha256: str | None = None) -> None:
        cb = _adding(progress)
        extra = {"Metadata": {"sha256": sha256}} if sha256 else {}
        try:
            self.client.upload_file(str(local), self.cfg.bucket, self.prefix + key, ExtraArgs=extra,
                                    Callback=cb, Config=self._transfer())
        except Exception as exc:  # noqa: BLE001 - boto3 raises many kinds; all mean "not stored"
            raise self._fail(f"upload of {key}", exc) from None
        stored = self.size(key)
        if stored != local.stat().st_size:
            raise TargetError(f"{self.name}: {key} reads back as {stored} bytes, expected {local.stat().st_size}")

    def get_file(self, key: str, local: Path, progress: Progress | None = None) -> None:
        cb = _adding(progress)
        try:
            self.client.download_file(self.cfg.bucket, self.prefix + key, str(local), Callback=cb,
                                      Config=self._transfer())
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"download of {key}", exc) from None

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.cfg.bucket, Key=self.prefix + key, Body=data,
                                   ContentType="application/json")
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"upload of {key}", exc) from None

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.cfg.bucket, Key=self.prefix + key)["Body"].read()  # type: ignore[no-any-return]
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"download of {key}", exc) from None

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return int(self.client.head_object(Bucket=self.cfg.bucket, Key=self.prefix + key)["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail(f"look-up of {key}", exc) from None
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"look-up of {key}", exc) from None

    def keys(self) -> list[str]:
        out: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.cfg.bucket,
                                                                               Prefix=self.prefix):
                out += [o["Key"][len(self.prefix):] for o in page.get("Contents", [])]
        except Exception as exc:  # noqa: BLE001
            raise self._fail("listing", exc) from None
        return sorted(k for k in out if "/" not in k)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.cfg.bucket, Key=self.prefix + key)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"deletion of {key}", exc) from None
