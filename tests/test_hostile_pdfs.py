"""Hostile PDFs from public research (../shared/corpus): refused clearly, never a 500.

Uploads and verifications both parse in a child process with memory, CPU and
time limits, so a regression here fails a test instead of killing the suite.
"""

import gzip
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from signflow.core.models import Round
from tests.conftest import SHARED, create_round, signers_spec

CORPUS = SHARED / "corpus"
if not CORPUS.is_dir():
    pytest.skip(f"LOUD SKIP: the hostile-PDF corpus is not at {CORPUS} (CI has it)",
                allow_module_level=True)

DOS = sorted((CORPUS / "dos").iterdir())
SHADOW = CORPUS / "shadow"
ACCEPTABLE = ("NONE", "LTA_UPDATES", "FORM_FILLING")


def load(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def round_count(runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Round))


#: The suite's unmodified control file: ordinary bookmarks, no loop. Refusing it
#: would mean refusing every protocol with a table of contents.
CONTROL = "E1-next-outline-original.pdf"


@pytest.mark.parametrize("path", DOS, ids=[p.name for p in DOS])
def test_dos_upload_is_refused_clearly(path, client, auth, runtime):
    before = round_count(runtime)
    resp = client.post("/api/v1/rounds", headers=auth, data={
        "round": json.dumps({"title": "Angrepp", "signers": signers_spec()}),
        "document": (io.BytesIO(load(path)), path.name.removesuffix(".gz"))})
    if path.name == CONTROL:
        assert resp.status_code == 201, resp.get_json()
        assert round_count(runtime) == before + 1
        return
    assert resp.status_code in (413, 422), resp.get_data(as_text=True)[:300]
    error = resp.get_json()["error"]
    assert error["message"] and error["code"] in (
        "hostile_structure", "active_content", "too_complex", "too_large", "unparsable",
        "request_entity_too_large")
    assert round_count(runtime) == before


@pytest.mark.parametrize("path", DOS, ids=[p.name for p in DOS])
def test_dos_verification_ends_in_a_verdict(path, client):
    resp = client.post("/api/v1/verify", data={
        "document": (io.BytesIO(load(path)), path.name.removesuffix(".gz"))})
    assert resp.status_code in (200, 413, 415, 422), resp.get_data(as_text=True)[:300]
    if resp.status_code == 200:
        assert resp.get_json()["valid"] is False


def test_bombs_are_refused_as_too_complex(client, auth):
    for name in ("deflate-bomb-10GB.pdf.gz", "deflate-bomb-trivial-10GB.pdf.gz"):
        resp = create_round(client, auth, load(CORPUS / "dos" / name))
        assert resp.status_code == 422
        assert resp.get_json()["error"]["code"] == "too_complex"


def shadow(stage: str) -> list[Path]:
    return sorted(SHADOW.glob(f"*__{stage}_*.pdf"))


@pytest.mark.parametrize("path", shadow("4"), ids=lambda p: p.name[:60])
def test_shadow_manipulated_is_never_valid(path, client):
    report = client.post("/api/v1/verify", data={
        "document": (io.BytesIO(path.read_bytes()), "x.pdf")}).get_json()
    assert report["valid"] is False
    sig = report["signatures"][0]
    # judged as changed after signing, not merely as untrusted
    assert not sig["intact"] or sig["modification_level"] not in ACCEPTABLE, sig


@pytest.mark.parametrize("path", shadow("3"), ids=lambda p: p.name[:60])
def test_shadow_signed_is_intact_but_not_ours(path, client):
    report = client.post("/api/v1/verify", data={
        "document": (io.BytesIO(path.read_bytes()), "x.pdf")}).get_json()
    sig = report["signatures"][0]
    assert sig["intact"] is True and sig["modification_level"] == "NONE"
    assert sig["trusted"] is False and report["valid"] is False


@pytest.mark.parametrize("path", shadow("2"), ids=lambda p: p.name[:60])
def test_shadowed_upload_is_normalized(path, client, auth):
    """A shadowed upload becomes one clean revision before anyone signs it."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    resp = create_round(client, auth, path.read_bytes())
    assert resp.status_code == 201, resp.get_json()
    doc = client.get(f"/api/v1/rounds/{resp.get_json()['id']}/document", headers=auth).data
    reader = PdfFileReader(io.BytesIO(doc))
    # the clean rewrite, then our certification: nothing of the upload's history remains
    assert reader.xrefs.total_revisions == 2
    assert b"/JavaScript" not in doc and b"/OpenAction" not in doc
