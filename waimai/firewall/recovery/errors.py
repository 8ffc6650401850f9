"""Backup failures people can act on: each one is an `AppError`, so the API answers it with its status
and the CLI prints its message (never a traceback)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from sqlalchemy.exc import SQLAlchemyError

from waimai.core.errors import AppError


class BackupError(AppError):
    status, code = 422, "backup_error"


class BackupNotFound(BackupError):
    status, code = 404, "backup_not_found"


class BackupBusy(BackupError):
    status, code = 409, "backup_busy"


class ChecksumMismatch(BackupError):
    status, code = 409, "backup_checksum_mismatch"


class KeyMissing(BackupError):
    status, code = 422, "backup_key_missing"


class BackupRefused(BackupError):
    status, code = 409, "backup_refused"


class TargetError(BackupError):
    status, code = 502, "backup_target_failed"


@contextlib.contextmanager
def driver_errors(what: str) -> Iterator[None]:
    """A database driver's error (unreachable, no privilege, …) as a BackupError naming what failed."""
    import psycopg

    try:
        yield
    except (sqlite3.Error, SQLAlchemyError, psycopg.Error) as exc:
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise BackupError(f"{what}: {first[:300]}") from None
