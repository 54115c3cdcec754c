"""The orphan sweep: blobs that no document refers to, removed after a grace period.

A blob is written before the transaction that stores its
:class:`~signflow.core.models.Document` commits (see
:class:`~signflow.core.ports.BlobStore`); when that transaction rolls back or
its process dies, the blob is left behind.  The grace period is longer than
any such transaction, and a store deletes a blob only if nobody has put it
since the cutoff, so a blob whose commit is under way is never swept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import select
from sqlalchemy.orm import Session

from signflow.core.models import Document, utcnow
from signflow.core.ports import BlobStore

#: How long a blob may wait for the commit that refers to it.
GRACE = timedelta(hours=1)
#: Keys checked against the documents table in one query.
BATCH = 500


def sweep_orphans(session: Session, blobs: BlobStore, *, older_than: timedelta = GRACE,
                  now: datetime | None = None) -> list[str]:
    """Delete the blobs written more than *older_than* ago that no document refers to.

    :param session: reads ``documents``; nothing is written through it.
    :returns: the keys deleted.
    """
    cutoff = (now or utcnow()) - older_than
    deleted = []
    for batch in _batches(blobs.stored_before(cutoff), BATCH):
        referred = set(session.scalars(
            select(Document.storage_key).where(Document.storage_key.in_(batch))))
        deleted += [key for key in batch
                    if key not in referred and blobs.delete(key, written_before=cutoff)]
    return deleted


def _batches(keys: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(keys)
    while batch := list(islice(it, size)):
        yield batch
