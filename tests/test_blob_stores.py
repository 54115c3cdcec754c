"""Blob stores: one contract for the file system, the database (SQLite, and PostgreSQL
where the suite runs on it) and S3 (moto's standalone server, over real HTTP)."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from signflow import create_app
from signflow.adapters.storage import (
    DatabaseBlobStore,
    FileBlobStore,
    S3BlobStore,
    build_blob_store,
)
from signflow.config import Settings
from signflow.core.blob_gc import sweep_orphans
from signflow.core.models import Blob, Document, Organisation, Round, User, utcnow
from signflow.db import make_engine, make_session_factory, session_scope
from signflow.errors import ConfigError, NotFound
from signflow.migrate import upgrade
from signflow.runtime import build_runtime
from tests.conftest import (
    PG_URL,
    create_round,
    free_port,
    make_user,
    sign_all,
    signers_spec,
    wait_for_status,
)

needs_postgresql = pytest.mark.skipif(not PG_URL, reason="the database store needs PostgreSQL "
                                      "(SIGNFLOW_TEST_DATABASE_URL)")
STORES = ["file", "sqlite", pytest.param("postgresql", marks=needs_postgresql), "s3"]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free local port, for this module only."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_settings(endpoint: str, bucket: str = "", **extra: str) -> Settings:
    return Settings(extra={
        "blob_store": "s3", "s3_bucket": bucket, "s3_endpoint_url": endpoint,
        "s3_prefix": "documents/", "s3_region": "eu-north-1",
        "s3_access_key_id": "test-key", "s3_secret_access_key": "test-secret", **extra})


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("blobs") / "template.sqlite3"
    upgrade(Settings(data_dir=path.parent, database_url=f"sqlite:///{path}"))
    return path


@pytest.fixture(params=STORES)
def kind(request) -> str:
    return request.param


def open_database(request, kind: str, sqlite_template: Path, tmp_path: Path):
    if kind == "postgresql":
        return make_engine(request.getfixturevalue("database_url"))  # conftest's: emptied
    shutil.copy(sqlite_template, tmp_path / "db.sqlite3")
    return make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")


@pytest.fixture
def engine(request, kind, sqlite_template, tmp_path):
    """The database the documents are in (and, for the database stores, the blobs)."""
    engine = open_database(request, kind, sqlite_template, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgresql)])
def database(request, sqlite_template, tmp_path):
    """A database for the database store's own tests."""
    engine = open_database(request, request.param, sqlite_template, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def postgresql(request, sqlite_template, tmp_path):
    if not PG_URL:
        pytest.skip("the database store needs PostgreSQL (SIGNFLOW_TEST_DATABASE_URL)")
    engine = open_database(request, "postgresql", sqlite_template, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def store(request, kind, engine, tmp_path):
    if kind == "file":
        return FileBlobStore(tmp_path / "documents")
    if kind == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = f"signflow-{uuid.uuid4().hex[:12]}"
        s3 = build_blob_store(s3_settings(endpoint, bucket), engine)
        assert isinstance(s3, S3BlobStore)
        s3.client.create_bucket(Bucket=bucket, CreateBucketConfiguration={
            "LocationConstraint": "eu-north-1"})
        return s3
    return DatabaseBlobStore(engine)


@pytest.fixture
def tick(kind) -> float:
    """A wait that the store's clock is sure to see (S3 gives whole seconds)."""
    return 1.1 if kind == "s3" else 0.02


def refer_to(engine, key: str) -> None:
    """Store a document (of a round of its own) whose bytes are the blob *key*."""
    with session_scope(make_session_factory(engine)) as session:
        org = Organisation(name=f"Kommun {uuid.uuid4().hex[:6]}")
        user = User(email=f"{uuid.uuid4().hex[:6]}@k.se", role="secretariat", organisation=org)
        round_ = Round(organisation=org, created_by=user, title="Protokoll",
                       expires_at=utcnow() + timedelta(days=30))
        session.add_all([org, user, round_])
        session.flush()
        session.add(Document(round_id=round_.id, kind="original", sha256=key, size=1,
                             storage_key=key))


def sweep(engine, store, **kwargs) -> list[str]:
    with session_scope(make_session_factory(engine)) as session:
        return sweep_orphans(session, store, **kwargs)


# -- the contract ---------------------------------------------------------------------


def test_a_blob_comes_back_under_its_sha256(store):
    data = b"%PDF-1.7 protokoll " + uuid.uuid4().bytes
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.get(key) == data


def test_the_same_bytes_get_the_same_key_and_other_bytes_another(store):
    first = store.put(b"protokoll nr 2")
    assert store.put(b"protokoll nr 2") == first
    assert store.put(b"protokoll nr 3") != first
    assert store.get(first) == b"protokoll nr 2"


def test_an_empty_blob_is_a_blob(store):
    assert store.get(store.put(b"")) == b""


@pytest.mark.parametrize("key", ["0" * 64, hashlib.sha256(b"never stored").hexdigest()])
def test_an_unknown_key_is_not_found(store, key):
    with pytest.raises(NotFound):
        store.get(key)


@pytest.mark.parametrize("key", ["", "abc", "../../etc/passwd", "A" * 64, "0" * 63 + "/",
                                 "0" * 65, "documents/" + "0" * 64])
def test_a_malformed_key_is_not_found(store, key):
    store.put(b"something stored")
    with pytest.raises(NotFound):
        store.get(key)


def test_a_20_mb_blob_round_trips(store):
    data = os.urandom(20 * 1024 * 1024)
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.get(key) == data


def test_concurrent_puts_of_the_same_bytes_store_it_once(store):
    data = os.urandom(256 * 1024)
    start = threading.Barrier(8)

    def put() -> str:
        start.wait()
        return store.put(data)

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: put(), range(8)))
    assert keys == {hashlib.sha256(data).hexdigest()}
    assert store.get(keys.pop()) == data
    assert len(list(store.stored_before(utcnow() + timedelta(hours=1)))) == 1


def test_the_sweep_removes_only_old_blobs_no_document_refers_to(store, engine):
    referred, orphan = store.put(b"a prepared protocol"), store.put(b"left by a rollback")
    refer_to(engine, referred)

    assert sweep(engine, store) == []  # both younger than the hour's grace
    assert sweep(engine, store, older_than=timedelta(minutes=30),
                 now=utcnow() + timedelta(hours=2)) == [orphan]

    assert store.get(referred) == b"a prepared protocol"
    with pytest.raises(NotFound):
        store.get(orphan)
    assert sweep(engine, store, now=utcnow() + timedelta(hours=2)) == []


def test_a_blob_put_again_after_the_cutoff_is_kept(store, tick):
    """The same bytes put for a new document while they wait, old and unreferred,
    for the sweep: the commit that will refer to them may be under way."""
    again, untouched = store.put(b"uploaded twice"), store.put(b"uploaded once")
    time.sleep(tick)
    cutoff = utcnow()
    time.sleep(tick)
    assert store.put(b"uploaded twice") == again

    assert store.delete(again, written_before=cutoff) is False
    assert store.get(again) == b"uploaded twice"
    assert store.delete(untouched, written_before=cutoff) is True
    assert store.delete(untouched, written_before=cutoff) is False  # gone already
    assert list(store.stored_before(utcnow() + timedelta(seconds=5))) == [again]


def test_the_sweep_reads_many_pages(store, engine, monkeypatch):
    import signflow.adapters.storage as storage
    import signflow.core.blob_gc as blob_gc

    monkeypatch.setattr(storage, "_PAGE", 3)
    monkeypatch.setattr(blob_gc, "BATCH", 4)
    keys = [store.put(f"blob {i}".encode()) for i in range(10)]
    refer_to(engine, keys[4])
    deleted = sweep(engine, store, now=utcnow() + timedelta(hours=2))
    assert sorted(deleted) == sorted(k for k in keys if k != keys[4])


# -- each store's own promises --------------------------------------------------------


def test_the_file_store_leaves_no_temporary_files(tmp_path):
    store = FileBlobStore(tmp_path / "documents")
    key = store.put(b"x" * 1000)
    store.delete(key, written_before=utcnow() + timedelta(seconds=1))
    store.put(b"y")
    names = [p.name for p in (tmp_path / "documents").rglob("*") if p.is_file()]
    assert names == [hashlib.sha256(b"y").hexdigest()]


def test_the_database_store_keeps_one_row_per_content(database):
    store = DatabaseBlobStore(database)
    data = os.urandom(1000)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda _: store.put(data), range(6)))
    with database.connect() as conn:
        rows = conn.execute(select(Blob.key, Blob.size)).all()
    assert [tuple(r) for r in rows] == [(hashlib.sha256(data).hexdigest(), 1000)]


def test_the_database_store_writes_before_the_callers_commit(postgresql):
    """A blob put inside a transaction that has written, and then rolls back, is
    still stored (on SQLite the blob's transaction would wait for the writer)."""
    store = DatabaseBlobStore(postgresql)
    with make_session_factory(postgresql)() as session:
        session.add(Organisation(name="Rullas tillbaka"))
        session.flush()
        key = store.put(b"written first")
        session.rollback()
    assert store.get(key) == b"written first"
    with postgresql.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Organisation)) == 0


def test_s3_objects_sit_under_the_prefix(s3_endpoint):
    store = build_blob_store(s3_settings(s3_endpoint, "prefixed"), make_engine("sqlite://"))
    assert isinstance(store, S3BlobStore)
    store.client.create_bucket(Bucket="prefixed",
                               CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
    key = store.put(b"protokoll")
    store.client.put_object(Bucket="prefixed", Key="documents/README", Body=b"not a blob")
    names = [o["Key"] for o in store.client.list_objects_v2(Bucket="prefixed")["Contents"]]
    assert set(names) == {"documents/README", f"documents/{key}"}
    assert list(store.stored_before(utcnow() + timedelta(hours=1))) == [key]


# -- choosing a store -----------------------------------------------------------------


def test_the_file_store_is_the_default(tmp_path):
    store = build_blob_store(Settings(data_dir=tmp_path), make_engine("sqlite://"))
    assert isinstance(store, FileBlobStore)
    assert store.directory == tmp_path / "documents"


@pytest.mark.parametrize("extra,setting", [
    ({"blob_store": "ftp"}, "SIGNFLOW_BLOB_STORE"),
    ({"blob_store": "s3"}, "SIGNFLOW_S3_BUCKET"),
    ({"blob_store": "s3", "s3_bucket": "b", "s3_access_key_id": "k"},
     "SIGNFLOW_S3_SECRET_ACCESS_KEY"),
    ({"blob_store": "s3", "s3_bucket": "b", "s3_secret_access_key": "s"},
     "SIGNFLOW_S3_ACCESS_KEY_ID"),
    ({"blob_store": "database"}, "SIGNFLOW_BLOB_STORE"),  # on SQLite
])
def test_a_store_that_cannot_work_is_refused_naming_the_setting(tmp_path, extra, setting):
    with pytest.raises(ConfigError) as err:
        build_blob_store(Settings(data_dir=tmp_path, extra=extra), make_engine("sqlite://"))
    assert setting in err.value.message
    assert err.value.fields["setting"] == setting


def test_the_database_store_is_chosen_on_postgresql(postgresql):
    store = build_blob_store(Settings(extra={"blob_store": "database"}), postgresql)
    assert isinstance(store, DatabaseBlobStore)


def test_s3_credentials_come_from_the_settings(s3_endpoint):
    store = build_blob_store(s3_settings(s3_endpoint, "creds"), make_engine("sqlite://"))
    assert isinstance(store, S3BlobStore)
    credentials = store.client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("test-key", "test-secret")
    assert store.client.meta.endpoint_url == s3_endpoint


# -- end to end -----------------------------------------------------------------------


@needs_postgresql
@pytest.mark.slow
def test_a_round_through_the_api_keeps_every_document_in_the_database(settings, protocol_pdf,
                                                                      tmp_path, dispatcher_paused):
    # jobs in this process: a worker of its own would not know this runtime's store; a data
    # dir of its own, since the PostgreSQL pass shares one and other tests' file store put
    # the same protocol there; its mail too: the RQ pass's dispatcher process, on the same
    # database, would otherwise take some of the invitations to its own outbox dir
    settings = settings.with_overrides(redis_url="", extra={"blob_store": "database"},
                                       data_dir=tmp_path)
    runtime = build_runtime(settings)
    try:
        assert isinstance(runtime.services.blobs, DatabaseBlobStore)
        client = create_app(settings, runtime).test_client()
        auth = {"Authorization": "Bearer " + make_user(runtime, "sek@example.se")}
        signers = signers_spec()
        resp = create_round(client, auth, protocol_pdf, signers=signers)
        assert resp.status_code == 201, resp.get_json()
        round_id = resp.get_json()["id"]
        sign_all(client, runtime, settings, signers)
        wait_for_status(client, auth, round_id, "completed")
        pdf = client.get(f"/api/v1/rounds/{round_id}/document", headers=auth).data

        with runtime.sessions() as session:
            docs = session.execute(select(Document.kind, Document.storage_key, Document.size)
                                   .where(Document.round_id == round_id)).all()
            stored = {key: size for key, size in session.execute(select(Blob.key, Blob.size))}
        assert {kind for kind, _, _ in docs} == {"original", "prepared", "signed", "final"}
        assert {key: size for _, key, size in docs}.items() <= stored.items()
        assert hashlib.sha256(pdf).hexdigest() in stored
        files = settings.data_dir / "documents"
        assert not any((files / key[:2] / key).exists() for _, key, _ in docs)
    finally:
        runtime.close()
