"""Our RFC 3161 client (SIGNFLOW_TSA_URL): tokens from a TSA over HTTP, failures said
as pyHanko's TimestampRequestError, never a parent's connection in a forked child."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from asn1crypto import tsp
from pyhanko.sign.timestamps.common_utils import TimestampRequestError

from signflow.pdf.keys import HttpTimeStamper, make_timestamper
from tests.conftest import free_port


def stamp(tsa: HttpTimeStamper, data: bytes = b"protokoll"):
    return asyncio.run(tsa.async_timestamp(hashlib.sha256(data).digest(), "sha256"))


def test_a_token_from_a_tsa_over_http(live_server, keys_dir):
    from signflow.pdf.pki import load_pki

    tsa = make_timestamper(load_pki(keys_dir), f"{live_server}/tsa")
    assert isinstance(tsa, HttpTimeStamper)
    token = stamp(tsa)
    info = tsp.TSTInfo.load(token["content"]["encap_content_info"]["content"].parsed.dump())
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(b"protokoll").digest()
    assert stamp(tsa, b"again")  # the session is kept and used again


def test_a_tsa_that_is_not_there_is_a_timestamp_request_error():
    tsa = HttpTimeStamper(f"http://127.0.0.1:{free_port()}/tsa", timeout=2)
    with pytest.raises(TimestampRequestError, match="cannot be reached"):
        stamp(tsa)


def test_an_answer_that_is_not_a_timestamp_reply_is_refused(live_server):
    tsa = HttpTimeStamper(f"{live_server}/healthz", timeout=5)  # 405 or JSON, not a reply
    with pytest.raises(TimestampRequestError, match="not a timestamp reply"):
        stamp(tsa)


def test_a_forked_process_has_a_session_of_its_own(live_server):
    tsa = HttpTimeStamper(f"{live_server}/tsa")
    stamp(tsa)  # the parent's session holds a connection now
    parent = id(tsa._session())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, b"own" if id(tsa._session()) != parent else b"shared")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.waitpid(pid, 0)
    assert answer == b"own"
