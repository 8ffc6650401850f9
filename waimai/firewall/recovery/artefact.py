"""The artefact pipeline: raw dump → compressed (zstd, else gzip) → optionally encrypted → sha256-summed.

Encryption is AES-256-GCM in independent records of 4 MiB so that a backup of any size streams in
constant memory. Each record's nonce is a random 8-byte prefix (one per artefact) and the record's
4-byte counter; its associated data binds the record number and whether it is the last one, so records
cannot be reordered, dropped or the artefact truncated without the tag check failing.

    artefact  = MAGIC  prefix(8)  record*
    record    = length(4, big endian)  AESGCM(plaintext ≤ 4 MiB, aad = index(8) ‖ last(1))
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import os
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from waimai.firewall.recovery.errors import BackupError, ChecksumMismatch

try:
    import zstandard
except ImportError:  # pragma: no cover - the lock pins it; gzip is the fallback
    zstandard = None  # type: ignore[assignment]

READ = 1 << 20
RECORD = 4 << 20
MAGIC = b"WAIMAI-AESGCM-1\n"
ZSTD_LEVEL = 1
GZIP_LEVEL = 4

Progress = Callable[[int], None]


def best_compression(wanted: str) -> str:
    """`zstd` when asked for and the library is there, else `gzip`."""
    return "zstd" if wanted == "zstd" and zstandard is not None else "gzip"


def parse_key(text: str) -> bytes:
    """A 32-byte key from its base64 text (standard or URL-safe). The error never repeats the text."""
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw.replace("+", "-").replace("/", "_") + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise BackupError("The backup encryption key must be 32 random bytes in base64 "
                          "(make one with `waimai backup keygen`).", code="backup_key_invalid")
    return key


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def key_id(key: bytes) -> str:
    """A short fingerprint naming the key in manifests (reveals nothing usable about the key)."""
    return hashlib.sha256(b"waimai-backup-key-id:" + key).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(READ):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Packed:
    size: int
    sha256: str
    raw_size: int


class _HashingFile:
    """Writes through to a file, summing and counting the bytes."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.h.update(data)
        self.n += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


class _Encryptor:
    """A writer that seals what it receives into AES-GCM records for the writer below it."""

    def __init__(self, key: bytes, out: _HashingFile) -> None:
        self.aead = AESGCM(key)
        self.out = out
        self.prefix = secrets.token_bytes(8)
        self.buf = bytearray()
        self.index = 0
        out.write(MAGIC + self.prefix)

    def _seal(self, data: bytes, last: bool) -> None:
        nonce = self.prefix + struct.pack(">I", self.index)
        sealed = self.aead.encrypt(nonce, data, struct.pack(">QB", self.index, last))
        self.out.write(struct.pack(">I", len(sealed)) + sealed)
        self.index += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.buf += data
        while len(self.buf) > RECORD:  # keep at least one byte back: the last record is sealed on close
            self._seal(bytes(self.buf[:RECORD]), False)
            del self.buf[:RECORD]
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._seal(bytes(self.buf), True)
        self.buf.clear()


class _Decryptor:
    """A reader giving back the plaintext of an encrypted artefact, record by record."""

    def __init__(self, key: bytes, f: BinaryIO) -> None:
        self.aead = AESGCM(key)
        self.f = f
        head = f.read(len(MAGIC) + 8)
        if head[: len(MAGIC)] != MAGIC:
            raise BackupError("This artefact is not an encrypted Waimai backup.", code="backup_format")
        self.prefix = head[len(MAGIC):]
        self.index = 0
        self.buf = b""
        self.done = False

    def _next(self) -> None:
        size = self.f.read(4)
        if len(size) != 4:
            raise BackupError("The encrypted artefact ends early (truncated).", code="backup_corrupt")
        sealed = self.f.read(struct.unpack(">I", size)[0])
        nonce = self.prefix + struct.pack(">I", self.index)
        for last in (False, True):
            try:
                self.buf = self.aead.decrypt(nonce, sealed, struct.pack(">QB", self.index, last))
            except InvalidTag:
                continue
            self.done = last
            self.index += 1
            return
        raise BackupError("Decryption failed: the key is not the one this backup was made with, or the "
                          "artefact is damaged.", code="backup_decrypt_failed")

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while (n < 0 or len(out) < n) and not (self.done and not self.buf):
            if not self.buf:
                self._next()
                continue
            take = len(self.buf) if n < 0 else min(n - len(out), len(self.buf))
            out += self.buf[:take]
            self.buf = self.buf[take:]
        return bytes(out)


class _Counting:
    """A reader that counts what passes through it (for progress)."""

    def __init__(self, f: IO[bytes], progress: Progress | None) -> None:
        self.f = f
        self.n = 0
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.n += len(data)
        if self.progress is not None and data:
            self.progress(self.n)
        return data


def pack(source: IO[bytes], dest: Path, *, compression: str, key: bytes | None,
         progress: Progress | None = None) -> Packed:
    """Stream `source` into the artefact file `dest` (fsynced); returns its size and sha256."""
    src = _Counting(source, progress)
    with open(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:  # customers' data
        sink = _HashingFile(f)
        enc = _Encryptor(key, sink) if key is not None else None
        below: Any = enc if enc is not None else sink
        if compression == "zstd":  # the copy loop in C, compression on every core
            zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1).copy_stream(src, below, read_size=READ,  # type: ignore[arg-type]
                                                                              write_size=READ)
        else:
            with gzip.GzipFile(fileobj=below, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz:
                while chunk := src.read(READ):
                    gz.write(chunk)
        if enc is not None:
            enc.close()
        f.flush()
        os.fsync(f.fileno())
    return Packed(size=sink.n, sha256=sink.h.hexdigest(), raw_size=src.n)


def check(path: Path, *, sha256: str, size: int) -> None:
    """Refuse an artefact whose bytes are not the ones the manifest recorded."""
    actual = path.stat().st_size
    if actual != size:
        raise ChecksumMismatch(f"Backup artefact {path.name} is {actual} bytes, the manifest says {size}: "
                               "it is damaged or incomplete.")
    if sha256_file(path) != sha256:
        raise ChecksumMismatch(f"Backup artefact {path.name} does not match its sha256 checksum: it is damaged "
                               "or was altered. It will not be restored.")


class _CountingWriter:
    def __init__(self, f: BinaryIO, progress: Progress | None) -> None:
        self.f = f
        self.n = 0
        self.progress = progress

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.n += len(data)
        if self.progress is not None:
            self.progress(self.n)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def unpack(path: Path, dest: Path, *, compression: str, key: bytes | None,
           progress: Progress | None = None) -> int:
    """Decrypt and decompress the artefact into `dest`; returns the raw size."""
    zerr: Any = zstandard.ZstdError if zstandard is not None else OSError
    with open(path, "rb") as f, open(dest, "wb") as out:
        src: Any = _Decryptor(key, f) if key is not None else f
        sink = _CountingWriter(out, progress)
        try:
            if compression == "zstd":
                if zstandard is None:  # pragma: no cover
                    raise BackupError("This backup is zstd-compressed and the zstandard library is missing.")
                zstandard.ZstdDecompressor().copy_stream(src, sink, read_size=READ,  # type: ignore[arg-type]
                                                          write_size=READ)
            else:
                with gzip.GzipFile(fileobj=src, mode="rb") as gz:
                    while chunk := gz.read(READ):
                        sink.write(chunk)
        except (zerr, OSError, EOFError) as exc:
            raise BackupError(f"The backup artefact could not be decompressed ({exc}).",
                              code="backup_corrupt") from None
    return sink.n
