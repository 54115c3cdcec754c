"""Providers chosen per workflow, and registered through entry points."""

import sys

from signflow.adapters.providers import GROUP, Providers, registered
from signflow.demo import links_in_outbox, sign_over_http
from tests.conftest import create_round, signers_spec, wait_for_status


def test_round_with_the_freja_workflow(client, auth, runtime, settings, protocol_pdf):
    from pathlib import Path

    assert "freja" in runtime.services.workflows or Path("workflows/freja.toml").exists()
    signers = signers_spec()
    resp = create_round(client, auth, protocol_pdf, signers=signers, workflow="freja")
    assert resp.status_code == 201, resp.get_json()
    round_id = resp.get_json()["id"]
    links = links_in_outbox(settings.data_dir / "outbox")
    page = client.get(f"/sign/{links[signers[0]['email']]}").get_data(as_text=True)
    assert "Signera med Freja eID" in page
    fake = runtime.providers.build("freja").simulator

    def approve(ref):
        fake.open(ref)
        fake.approve(ref)

    for s in signers:
        assert sign_over_http(client, links[s["email"]], approve)["status"] == "complete"
    body = wait_for_status(client, auth, round_id, "completed")
    assert {s["method"] for s in body["signers"]} == {"Freja eID+"}
    pdf = client.get(f"/api/v1/rounds/{round_id}/document", headers=auth).data
    from signflow.pdf.verify import verify_pdf

    report = verify_pdf(pdf, runtime.trust_anchors(), runtime.provider_roots())
    assert report.valid, [(s.field, s.problems) for s in report.signatures]
    approvals = [s for s in report.signatures if s.kind == "approval"]
    assert all(a.evidence and a.evidence.provider == "Freja eID+" and a.evidence.matches_document
               for a in approvals)


def test_unknown_workflow_is_400(client, auth, protocol_pdf):
    resp = create_round(client, auth, protocol_pdf, workflow="nosuch")
    assert resp.status_code == 400
    assert "workflow" in resp.get_json()["error"]["message"]


def test_sequential_workflow_sets_the_order(client, auth, protocol_pdf):
    body = create_round(client, auth, protocol_pdf, workflow="sequential").get_json()
    assert body["order"] == "sequential"
    assert [s["status"] for s in body["signers"]] == ["invited", "waiting", "waiting"]


def test_shipped_providers_are_entry_points():
    assert {"bankid", "freja"} <= set(registered())


def test_a_third_provider_registers_without_editing_signflow(tmp_path, monkeypatch, settings,
                                                             keys_dir):
    """A package of its own declares the entry point; signflow finds and builds it."""
    from signflow.pdf.pki import load_pki

    pkg = tmp_path / "thirdid.py"
    pkg.write_text(
        "from signflow.adapters.providers import ProviderBuild\n"
        "class Third:\n"
        "    method_name = 'Third eID'\n"
        "def build(settings, pki):\n"
        "    return ProviderBuild(Third())\n")
    dist = tmp_path / "thirdid-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdid\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\nthird = thirdid:build\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "third" in registered()
    providers = Providers(settings, load_pki(keys_dir))
    assert providers["third"].method_name == "Third eID"
    sys.modules.pop("thirdid", None)


def test_production_mode_without_freja(settings, protocol_pdf, worker):
    """An installed but unconfigured provider neither breaks verification nor starts rounds."""
    import io

    from signflow import create_app
    from signflow.runtime import build_runtime
    from tests.conftest import make_user

    settings = settings.with_overrides(dev_mode=False)
    rt = build_runtime(settings)
    try:
        client = create_app(settings, rt).test_client()
        assert client.get("/freja-sim/").status_code == 404
        assert client.get("/bankid-sim/").status_code == 404  # nobody approves as anyone
        assert client.get("/dev/outbox").status_code == 404
        resp = client.post("/api/v1/verify",
                           data={"document": (io.BytesIO(protocol_pdf), "x.pdf")})
        assert resp.status_code == 200 and resp.get_json()["valid"] is False
        auth = {"Authorization": "Bearer " + make_user(rt, "prod@example.se")}
        resp = create_round(client, auth, protocol_pdf, workflow="freja")
        assert resp.status_code == 400
        assert resp.get_json()["error"]["code"] == "provider_unavailable"
    finally:
        rt.close()
