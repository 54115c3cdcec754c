"""Blob stores: content addressed (SHA-256), written before the commit that refers to them.

Three implementations of :class:`~signflow.core.ports.BlobStore`, picked by
``SIGNFLOW_BLOB_STORE`` in :func:`build_blob_store`:

``file``
    the data directory; one machine (or a shared file system).
``database``
    the ``blobs`` table, written in a transaction of its own: web and workers
    on different machines share only the database.  PostgreSQL only.
``s3``
    an S3-compatible bucket (AWS, MinIO, …), through boto3.

Each refreshes a blob's write time when the same bytes are put again, and
deletes only if it is still old, so the orphan sweep
(:mod:`signflow.core.blob_gc`) never removes a blob a commit is about to use.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from signflow.config import Settings
from signflow.core.models import Blob, utcnow
from signflow.core.ports import BlobStore
from signflow.errors import ConfigError, NotFound

_KEY = re.compile(r"^[0-9a-f]{64}$")
#: Rows (or objects) the sweep's candidates are read in at a time.
_PAGE = 500


def _checked(key: str) -> str:
    if not _KEY.match(key):
        raise NotFound("no such blob")
    return key


class FileBlobStore:
    """Blobs as files ``<directory>/<first two hex digits>/<key>``; the mtime is the write time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / _checked(key)[:2] / key

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        try:
            os.utime(path)  # stored already: written now, as far as the sweep can tell
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{key}.{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound("no such blob") from None

    def stored_before(self, cutoff: datetime) -> Iterator[str]:
        if not self.directory.is_dir():
            return
        limit = cutoff.timestamp()
        for shard in sorted(self.directory.iterdir()):
            if not shard.is_dir():
                continue
            for entry in list(os.scandir(shard)):
                if _KEY.match(entry.name) and _mtime(entry.path) < limit:
                    yield entry.name

    def delete(self, key: str, *, written_before: datetime) -> bool:
        path = self._path(key)
        # Moved aside first, so that a put between the check and the removal
        # either wrote a new file (left alone) or refreshed this one (put back).
        aside = path.with_name(f".{key}.{uuid.uuid4().hex}.sweep")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        if _mtime(aside) >= written_before.timestamp():
            os.replace(aside, path)  # same bytes as any file a put wrote meanwhile
            return False
        aside.unlink()
        return True


def _mtime(path: str | Path) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return float("inf")  # gone meanwhile: nothing to sweep


class DatabaseBlobStore:
    """Blobs in the ``blobs`` table, each put in a short transaction of its own.

    The blob commits before the caller's transaction (the one that stores the
    :class:`~signflow.core.models.Document` naming it) does, so a document row
    never names missing bytes.  Not on SQLite: its one writer lock, held by
    the caller's transaction, would keep the blob's transaction waiting.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        now = utcnow()
        with self.engine.begin() as conn:
            refreshed = conn.execute(
                update(Blob).where(Blob.key == key).values(written_at=now)).rowcount
        if refreshed:
            return key
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(Blob).values(key=key, data=data, size=len(data),
                                                 written_at=now))
        except IntegrityError:
            pass  # another process stored the same bytes just now
        return key

    def get(self, key: str) -> bytes:
        with self.engine.connect() as conn:
            data = conn.scalar(select(Blob.data).where(Blob.key == _checked(key)))
        if data is None:
            raise NotFound("no such blob")
        return bytes(data)

    def stored_before(self, cutoff: datetime) -> Iterator[str]:
        after = ""
        while True:  # page by key: no connection stays open while the caller deletes
            with self.engine.connect() as conn:
                keys = list(conn.scalars(
                    select(Blob.key).where(Blob.written_at < cutoff, Blob.key > after)
                    .order_by(Blob.key).limit(_PAGE)))
            yield from keys
            if len(keys) < _PAGE:
                return
            after = keys[-1]

    def delete(self, key: str, *, written_before: datetime) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(
                delete(Blob).where(Blob.key == _checked(key), Blob.written_at < written_before)
            ).rowcount)


class S3BlobStore:
    """Blobs as objects ``<prefix><key>`` in an S3-compatible bucket.

    A put always uploads (content addressed: the same bytes again are harmless)
    and so moves ``LastModified`` on, which is the write time the sweep reads.
    The sweep checks that time just before deleting; a put of the same bytes
    in the milliseconds between the check and the delete would be lost, which
    S3 offers no conditional delete to prevent.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data)
        key = digest.hexdigest()
        # S3 checks the bytes it received against the checksum before storing them
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data,
                               ChecksumSHA256=base64.b64encode(digest.digest()).decode())
        return key

    def get(self, key: str) -> bytes:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.prefix + _checked(key))
        except self.client.exceptions.NoSuchKey:
            raise NotFound("no such blob") from None
        return bytes(reply["Body"].read())

    def stored_before(self, cutoff: datetime) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, PaginationConfig={"PageSize": _PAGE})
        for page in pages:
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.prefix):]
                if _KEY.match(key) and item["LastModified"] < cutoff:
                    yield key

    def delete(self, key: str, *, written_before: datetime) -> bool:
        from botocore.exceptions import ClientError

        name = self.prefix + _checked(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise
        if head["LastModified"].astimezone(UTC) >= written_before:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=name)
        return True


STORES = ("file", "database", "s3")


def build_blob_store(settings: Settings, engine: Engine) -> BlobStore:
    """The blob store ``SIGNFLOW_BLOB_STORE`` names (``file``, the default; ``database``;
    ``s3``); :class:`ConfigError` naming the setting when it cannot work."""
    kind = settings.extra.get("blob_store", "") or "file"
    if kind == "file":
        return FileBlobStore(settings.data_dir / "documents")
    if kind == "database":
        if engine.dialect.name == "sqlite":
            raise ConfigError(
                "SIGNFLOW_BLOB_STORE=database needs PostgreSQL (SIGNFLOW_DATABASE_URL): on "
                "SQLite a blob's own transaction would wait for the one that refers to it; "
                "use file", setting="SIGNFLOW_BLOB_STORE")
        return DatabaseBlobStore(engine)
    if kind == "s3":
        return _s3_store(settings)
    raise ConfigError(f"SIGNFLOW_BLOB_STORE must be one of {', '.join(STORES)}, not {kind!r}",
                      setting="SIGNFLOW_BLOB_STORE")


def _s3_store(settings: Settings) -> S3BlobStore:
    extra = settings.extra
    bucket = extra.get("s3_bucket", "")
    if not bucket:
        raise ConfigError("SIGNFLOW_S3_BUCKET must name the bucket when SIGNFLOW_BLOB_STORE=s3",
                          setting="SIGNFLOW_S3_BUCKET")
    key_id, secret = extra.get("s3_access_key_id", ""), extra.get("s3_secret_access_key", "")
    if bool(key_id) != bool(secret):
        missing = "SIGNFLOW_S3_SECRET_ACCESS_KEY" if key_id else "SIGNFLOW_S3_ACCESS_KEY_ID"
        raise ConfigError(f"{missing} must be set with the other S3 credential",
                          setting=missing)
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigError("SIGNFLOW_BLOB_STORE=s3 needs boto3 (pip install 'signflow[prod]')",
                          setting="SIGNFLOW_BLOB_STORE") from None
    endpoint = extra.get("s3_endpoint_url", "") or None
    # credentials given here, else boto3's own chain (environment, profile, instance role)
    session = boto3.session.Session(aws_access_key_id=key_id or None,
                                    aws_secret_access_key=secret or None,
                                    region_name=extra.get("s3_region", "") or None)
    config = Config(retries={"mode": "standard"},
                    s3={"addressing_style": "path" if endpoint else "auto"})
    client = session.client("s3", endpoint_url=endpoint, config=config)
    return S3BlobStore(client, bucket, extra.get("s3_prefix", ""))
