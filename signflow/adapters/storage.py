"""Filesystem blob store: content-addressed, write-once."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from signflow.errors import NotFound

_KEY = re.compile(r"^[0-9a-f]{64}$")


class FileBlobStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise NotFound("no such blob")
        return self.directory / key[:2] / key

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{key}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound("no such blob") from None
