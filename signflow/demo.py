"""One whole round on a generated protocol, driven through the HTTP interface.

Used by ``signflow demo`` and by the tests: every step goes through the
same routes a browser and the BankID app would use.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from signflow.adapters.bankid_sim import PERSONAS
from signflow.pdf.pages import sample_protocol

LINK = re.compile(r"/sign/([A-Za-z0-9_\-]+)")

DEMO_SIGNERS = [
    {"name": "Mikael Johansson", "email": "sekreterare@example.se", "role": "sekreterare",
     "organisation": "Familjen Helsingborg", "title": "Tf sekretariatschef"},
    {"name": "Ardiana Demjaha", "email": "justerare@example.se", "role": "justerare",
     "organisation": "Örkelljunga kommun", "title": "Kommundirektör",
     "personal_number": PERSONAS[1].personal_number},
    {"name": "Carina Leffler", "email": "ordforande@example.se", "role": "ordforande",
     "organisation": "Helsingborgs stad", "title": "Kommundirektör"},
]


def links_in_outbox(outbox: Path) -> dict[str, str]:
    """Latest signing-link token per recipient, from the dev outbox."""
    found: dict[str, str] = {}
    for path in sorted(outbox.glob("*.json")):
        mail = json.loads(path.read_text(encoding="utf-8"))
        m = LINK.search(mail["body"])
        if m:
            found[mail["to"]] = m.group(1)
    return found


def links_once_sent(outbox: Path, emails: list[str], timeout: float = 30.0) -> dict[str, str]:
    """The signing links of *emails*, once every one is in the outbox (the server's
    delivery thread writes them just after the request that sent them)."""
    deadline = time.monotonic() + timeout
    while True:
        found = links_in_outbox(outbox)
        if all(e in found for e in emails) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def sign_over_http(client, token: str, approve: Callable[[str], None],
                   timeout: float = 30.0) -> dict:
    """Press "sign with BankID", let *approve* act on the phone, poll to the end."""
    started = client.post(f"/sign/{token}/bankid", headers={"Accept": "application/json"})
    if started.status_code != 200:
        raise RuntimeError(f"starting BankID failed: {started.get_json()}")
    approve(started.get_json()["order_ref"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/sign/{token}/bankid").get_json()
        if body["status"] != "pending":
            return body
        time.sleep(0.05)
    raise TimeoutError("BankID order did not finish")


def run_demo(out: Path, *, keys_dir: Path, base_url: str,
             say: Callable[[str], None] = print) -> Path:
    """Run a three-signer round in a throw-away data dir; write the signed PDF to *out*."""
    from signflow import create_app
    from signflow.config import Settings
    from signflow.core.accounts import add_user, issue_token
    from signflow.db import session_scope
    from signflow.migrate import upgrade
    from signflow.pdf.pki import init_keys
    from signflow.runtime import build_runtime

    with tempfile.TemporaryDirectory(prefix="signflow-demo-") as tmp:
        settings = Settings(data_dir=Path(tmp), keys_dir=keys_dir, base_url=base_url,
                            secret_key="demo", dev_mode=True)  # simulator signers, dev TSA
        if init_keys(keys_dir, settings.base_url, settings.ca_organisation):
            say(f"made a development PKI in {keys_dir}")
        upgrade(settings)
        runtime = build_runtime(settings)
        try:
            app = create_app(settings, runtime)
            with session_scope(runtime.sessions) as session:
                user = add_user(session, "sekretariatet@example.se", "secretariat",
                                name="Sekretariatet", organisation="Familjen Helsingborg")
                token = issue_token(session, user, 1)
            client = app.test_client()
            auth = {"Authorization": f"Bearer {token}"}
            spec = {"title": "Protokoll nr 2 2026", "language": "sv", "order": "parallel",
                    "signers": DEMO_SIGNERS}
            resp = client.post("/api/v1/rounds", headers=auth, data={
                "round": json.dumps(spec),
                "document": (__import__("io").BytesIO(sample_protocol()), "protokoll.pdf"),
            })
            if resp.status_code != 201:
                raise RuntimeError(f"creating the round failed: {resp.get_json()}")
            round_id = resp.get_json()["id"]
            say(f"round {round_id}: prepared, certified, 3 invitations in the outbox")
            tokens = links_once_sent(settings.data_dir / "outbox",
                                     [s["email"] for s in DEMO_SIGNERS])
            sim = runtime.simulator
            assert sim is not None
            for signer, persona in zip(DEMO_SIGNERS, PERSONAS, strict=True):
                def approve(order_ref: str, persona=persona) -> None:
                    sim.open(order_ref)
                    sim.approve(order_ref, persona)

                result = sign_over_http(client, tokens[signer["email"]], approve)
                say(f"  {signer['role']:<12} {persona.name:<18} BankID {result['status']}")
            final = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
            say(f"round status: {final['status']}")
            pdf = client.get(f"/api/v1/rounds/{round_id}/document", headers=auth).data
            out.write_bytes(pdf)
            say(f"signed PDF: {out} ({len(pdf)} bytes)")
            return out
        finally:
            runtime.close()
