"""Staff sign-in (BankID auth, OpenID Connect), sign-out, sessions and API tokens."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select, update

from signflow import cli, create_app
from signflow.adapters.bankid_sim import PERSONAS
from signflow.core.models import ApiToken, User, utcnow
from signflow.db import session_scope
from signflow.runtime import build_runtime
from signflow.web.staff import METHOD, SEEN, SIGNED_IN, USER
from tests.conftest import free_port, make_user

STAFF_PN = PERSONAS[1].personal_number  # Ardiana Demjaha in the simulator
STRANGER = PERSONAS[2]


def env_for(monkeypatch, settings):
    monkeypatch.setenv("SIGNFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("SIGNFLOW_SECRET_KEY", settings.secret_key)


def staff_user(runtime, email: str | None = None, pn: str = STAFF_PN, role="secretariat"):
    from signflow.core.accounts import set_personal_number, user_by_email

    email = email or f"staff-{uuid.uuid4().hex[:6]}@example.se"
    token = make_user(runtime, email, role)
    with session_scope(runtime.sessions) as session:
        set_personal_number(session, runtime.services.sealer, user_by_email(session, email), pn)
    return email, token


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login_page(client, path="/login") -> str:
    resp = client.get(path)
    assert resp.status_code == 200
    return csrf_of(resp.get_data(as_text=True))


def session_cookie(client, settings) -> str | None:
    name = "__Host-signflow" if settings.base_url.startswith("https") else "signflow"
    cookie = client.get_cookie(name)
    return cookie.value if cookie else None


def bankid_sign_in(client, runtime, persona=PERSONAS[1], *, next_="", flow="qr", raw=False):
    """Start on /login, approve on the simulator as *persona*, poll once: its answer."""
    token = login_page(client)
    headers = {"X-CSRFToken": token}
    started = client.post("/login/bankid", json={"flow": flow, "next": next_}, headers=headers)
    assert started.status_code == 200, started.get_json()
    assert started.get_json()["status"] == "pending"
    ref = next(o.order_ref for o in runtime.simulator.open_orders() if o.kind == "auth")
    runtime.simulator.open(ref)
    pending = client.post("/login/bankid/status", json={"flow": flow}, headers=headers)
    assert pending.get_json()["status"] == "pending"
    runtime.simulator.approve(ref, persona)
    done = client.post("/login/bankid/status", json={"flow": flow}, headers=headers)
    return done if raw else done.get_json()


# --- users and personal numbers -------------------------------------------------------

def test_users_add_keeps_only_a_keyed_hash_of_the_personal_number(
        settings, monkeypatch, capsys, runtime):
    env_for(monkeypatch, settings)
    assert cli.main(["users", "add", "ny@example.se", "--role", "secretariat",
                     "--personal-number", "19750715-2390"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("sf_")
    with runtime.sessions() as session:
        stored = session.scalar(select(User.personal_number_hash)
                                .where(User.email == "ny@example.se"))
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert stored != hashlib.sha256(b"197507152390").hexdigest()  # keyed, not a bare hash
    assert stored == runtime.services.sealer.lookup_hash("197507152390")


def test_a_bad_or_taken_personal_number_is_refused_and_nothing_is_stored(
        settings, monkeypatch, capsys, runtime):
    env_for(monkeypatch, settings)
    assert cli.main(["users", "add", "a@example.se", "--role", "auditor",
                     "--personal-number", "197507152391"]) == 2
    assert "personal_number" in capsys.readouterr().err
    assert cli.main(["users", "add", "b@example.se", "--role", "auditor",
                     "--personal-number", STAFF_PN]) == 0
    capsys.readouterr()
    assert cli.main(["users", "add", "c@example.se", "--role", "auditor",
                     "--personal-number", STAFF_PN]) == 2
    assert "another user already signs in with that personal number" in \
        capsys.readouterr().err
    with runtime.sessions() as session:
        emails = set(session.scalars(select(User.email)))
    assert "a@example.se" not in emails and "c@example.se" not in emails


def test_set_personal_number_lets_an_existing_user_sign_in(
        settings, monkeypatch, capsys, runtime, client):
    env_for(monkeypatch, settings)
    make_user(runtime, "gammal@example.se")
    assert bankid_sign_in(client, runtime)["status"] == "unknown"
    assert cli.main(["users", "set-personal-number", "Gammal@example.se", STAFF_PN]) == 0
    assert "now signs in with BankID" in capsys.readouterr().out
    assert bankid_sign_in(client, runtime)["status"] == "complete"
    assert cli.main(["users", "set-personal-number", "ingen@example.se", STAFF_PN]) == 2
    assert "no user" in capsys.readouterr().err


def test_the_dev_user_signs_in_as_the_simulators_default_person(settings, runtime, client):
    cli._ensure_dev_user(settings)
    cli._ensure_dev_user(settings)  # idempotent
    assert (settings.data_dir / "dev-token").exists()
    page = client.get("/login").get_data(as_text=True)
    assert "sekretariatet@example.se" in page and PERSONAS[0].name in page
    assert PERSONAS[0].personal_number not in page
    result = bankid_sign_in(client, runtime, persona=None)  # the simulator's default
    assert result == {"status": "complete", "redirect": "/rounds"}


# --- BankID sign-in -------------------------------------------------------------------

def test_bankid_sign_in_renews_the_session_and_goes_to_next(settings, runtime, client):
    staff_user(runtime)
    login_page(client)
    before = session_cookie(client, settings)
    assert before
    result = bankid_sign_in(client, runtime, next_="/account/tokens?x=1")
    assert result == {"status": "complete", "redirect": "/account/tokens?x=1"}
    after = session_cookie(client, settings)
    assert after and after != before
    assert client.get("/account/tokens").status_code == 200
    again = client.get("/login?next=/account/tokens")  # signed in already: straight on
    assert again.status_code == 302 and again.headers["Location"] == "/account/tokens"


def test_next_never_leads_off_the_site(runtime, client):
    staff_user(runtime)
    result = bankid_sign_in(client, runtime, next_="//evil.example/")
    assert result["redirect"] == "/rounds"


def test_an_unknown_person_is_told_nothing_more_and_not_signed_in(runtime, client, caplog):
    staff_user(runtime)
    caplog.set_level(logging.INFO)
    result = bankid_sign_in(client, runtime, persona=STRANGER)
    assert result["status"] == "unknown"
    assert "no account for you" in result["message"] or "inget konto" in result["message"]
    assert STRANGER.name not in str(result) and STRANGER.personal_number not in str(result)
    assert client.get("/account/tokens").status_code == 302
    assert STRANGER.personal_number not in caplog.text


def test_sign_in_is_logged_without_the_personal_number(runtime, client, caplog):
    email, _ = staff_user(runtime)
    caplog.set_level(logging.INFO, logger="signflow.web.login")
    assert bankid_sign_in(client, runtime)["status"] == "complete"
    assert "staff sign-in: user" in caplog.text
    assert STAFF_PN not in caplog.text and STAFF_PN[:8] not in caplog.text


def test_the_login_pages_json_calls_need_the_csrf_token(client):
    login_page(client)
    assert client.post("/login/bankid", json={"flow": "qr"}).status_code == 400
    assert client.post("/login/bankid/status", json={}).status_code == 400
    assert client.post("/login/bankid/cancel", json={}).status_code == 400


def test_the_qr_code_changes_each_second_and_cancel_ends_the_order(runtime, client):
    token = login_page(client)
    headers = {"X-CSRFToken": token}
    assert client.get("/login/bankid/qr.svg").status_code == 404
    client.post("/login/bankid", json={"flow": "qr"}, headers=headers)
    first = client.get("/login/bankid/qr.svg")
    assert first.status_code == 200 and first.mimetype == "image/svg+xml"
    assert first.headers["Cache-Control"] == "no-store"
    time.sleep(1.05)
    assert client.get("/login/bankid/qr.svg").data != first.data
    (order,) = [o for o in runtime.simulator.open_orders() if o.kind == "auth"]
    assert client.post("/login/bankid/cancel", headers=headers).get_json() == \
        {"status": "cancelled"}
    assert order.order_ref not in {o.order_ref for o in runtime.simulator.open_orders()}
    polled = client.post("/login/bankid/status", json={}, headers=headers).get_json()
    assert polled["status"] == "failed"


def test_same_device_returns_to_the_login_page(runtime, client):
    token = login_page(client)
    body = client.post("/login/bankid", json={"flow": "same_device", "device": "phone"},
                       headers={"X-CSRFToken": token}).get_json()
    assert body["app_link"].startswith("https://app.bankid.com/?autostarttoken=")
    (order,) = [o for o in runtime.simulator.open_orders() if o.kind == "auth"]
    assert order.return_url.endswith("/login#bankid")


def test_the_qr_secret_stays_on_the_server(runtime, client):
    token = login_page(client)
    client.post("/login/bankid", json={"flow": "qr"}, headers={"X-CSRFToken": token})
    (order,) = [o for o in runtime.simulator.open_orders() if o.kind == "auth"]
    cookie = client.get_cookie("signflow").value
    payload = cookie.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert order.qr_start_secret.encode() not in decoded


def test_a_failed_poll_is_worded_for_the_person(runtime, client):
    token = login_page(client)
    headers = {"X-CSRFToken": token}
    client.post("/login/bankid", json={"flow": "qr"}, headers=headers)
    (order,) = [o for o in runtime.simulator.open_orders() if o.kind == "auth"]
    runtime.simulator.user_cancel(order.order_ref)
    body = client.post("/login/bankid/status", json={}, headers=headers).get_json()
    assert body == {"status": "failed", "message": "Åtgärden avbröts."}


# --- sign-out and sessions ------------------------------------------------------------

def test_sign_out_clears_the_session(runtime, client):
    staff_user(runtime)
    bankid_sign_in(client, runtime)
    page = client.get("/account/tokens").get_data(as_text=True)
    assert client.post("/logout").status_code == 400  # no CSRF token
    resp = client.post("/logout", data={"csrf_token": csrf_of(page)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert "Du har loggat ut" in client.get("/login").get_data(as_text=True)
    assert client.get("/account/tokens").status_code == 302


def idle_cookie(settings, user_id: int, idle_seconds: int) -> str:
    app = Flask("t")
    app.secret_key = settings.secret_key
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    now = int(time.time())
    return serializer.dumps({USER: user_id, SIGNED_IN: now - idle_seconds,
                             SEEN: now - idle_seconds, METHOD: "bankid", "_permanent": True})


def test_an_idle_session_is_sent_to_login(settings, runtime, client):
    email, _ = staff_user(runtime)
    with runtime.sessions() as session:
        uid = session.scalar(select(User.id).where(User.email == email))
    limit = settings.session_idle_minutes * 60
    client.set_cookie("signflow", idle_cookie(settings, uid, limit - 60))
    assert client.get("/account/tokens").status_code == 200
    client.set_cookie("signflow", idle_cookie(settings, uid, limit + 5))
    resp = client.get("/account/tokens")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login?next=/account/tokens"


def test_session_cookie_flags_on_http(runtime, client):
    staff_user(runtime)
    done = bankid_sign_in(client, runtime, raw=True)
    (cookie,) = [h for h in done.headers.getlist("Set-Cookie") if h.startswith("signflow=")]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_and_host_prefixed_behind_https(settings, runtime):
    https = settings.with_overrides(base_url="https://signflow.example.se")
    rt = build_runtime(https)
    try:
        app = create_app(https, rt)
        client = app.test_client()
        email, _ = staff_user(rt)
        resp = client.get("/login", base_url="https://signflow.example.se")
        token = csrf_of(resp.get_data(as_text=True))
        headers = {"X-CSRFToken": token, "Referer": "https://signflow.example.se/login"}
        client.post("/login/bankid", json={"flow": "qr"}, headers=headers,
                    base_url="https://signflow.example.se")
        ref = next(o.order_ref for o in rt.simulator.open_orders() if o.kind == "auth")
        rt.simulator.open(ref)
        rt.simulator.approve(ref, PERSONAS[1])
        done = client.post("/login/bankid/status", json={}, headers=headers,
                           base_url="https://signflow.example.se")
        assert done.get_json()["status"] == "complete"
        (cookie,) = [h for h in done.headers.getlist("Set-Cookie")
                     if h.startswith("__Host-signflow=")]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Path=/" in cookie and "Domain" not in cookie
    finally:
        rt.close()


# --- API tokens page ------------------------------------------------------------------

def signed_in(client, runtime):
    email, token = staff_user(runtime)
    assert bankid_sign_in(client, runtime)["status"] == "complete"
    return email, token


def test_a_stranger_is_sent_to_login_from_the_tokens_page(client):
    resp = client.get("/account/tokens")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login?next=/account/tokens"


def test_a_new_token_is_shown_once_and_works(runtime, client):
    signed_in(client, runtime)
    page = client.get("/account/tokens").get_data(as_text=True)
    resp = client.post("/account/tokens", data={"name": "Ärendesystemet",
                                                "csrf_token": csrf_of(page)})
    assert resp.status_code == 201
    shown = re.search(r'id="new-token"[^>]*>(sf_[^<]+)</textarea>',
                      resp.get_data(as_text=True)).group(1)
    again = client.get("/account/tokens").get_data(as_text=True)
    assert shown not in again and "Ärendesystemet" in again
    api = client.get("/api/v1/rounds", headers={"Authorization": f"Bearer {shown}"})
    assert api.status_code == 200


def test_a_token_needs_a_name_and_nothing_is_stored_without(runtime, client):
    email, _ = signed_in(client, runtime)
    page = client.get("/account/tokens").get_data(as_text=True)
    for name, status in (("", 400), ("x" * 101, 400)):
        resp = client.post("/account/tokens", data={"name": name,
                                                    "csrf_token": csrf_of(page)})
        assert resp.status_code == status
        assert 'class="field-error"' in resp.get_data(as_text=True)
        assert 'aria-invalid="true"' in resp.get_data(as_text=True)
    with runtime.sessions() as session:
        count = len(session.scalars(select(ApiToken).join(User)
                                    .where(User.email == email)).all())
    assert count == 1  # the one make_user issued


def test_last_use_is_noted_at_most_once_a_minute(runtime, client):
    email, token = signed_in(client, runtime)
    auth = {"Authorization": f"Bearer {token}"}

    def last_used():
        with runtime.sessions() as session:
            return session.scalar(select(ApiToken.last_used_at).join(User)
                                  .where(User.email == email))

    assert last_used() is None
    assert client.get("/api/v1/rounds", headers=auth).status_code == 200
    first = last_used()
    assert first is not None
    client.get("/api/v1/rounds", headers=auth)
    assert last_used() == first
    with runtime.sessions() as session, session.begin():
        session.execute(update(ApiToken).where(ApiToken.last_used_at == first)
                        .values(last_used_at=utcnow() - timedelta(minutes=2)))
    client.get("/api/v1/rounds", headers=auth)
    assert last_used() > first - timedelta(seconds=1)
    assert "Aldrig" not in client.get("/account/tokens").get_data(as_text=True)


def test_revoke_own_token_and_not_someone_elses(runtime, client):
    email, token = signed_in(client, runtime)
    other = make_user(runtime, "annan@example.se")
    with runtime.sessions() as session:
        mine = session.scalar(select(ApiToken.id).join(User).where(User.email == email))
        theirs = session.scalar(select(ApiToken.id).join(User)
                                .where(User.email == "annan@example.se"))
    page = client.get("/account/tokens").get_data(as_text=True)
    assert f"/account/tokens/{theirs}/revoke" not in page
    csrf = csrf_of(page)
    assert client.post(f"/account/tokens/{theirs}/revoke",
                       data={"csrf_token": csrf}).status_code == 404
    assert client.get("/api/v1/rounds",
                      headers={"Authorization": f"Bearer {other}"}).status_code == 200
    assert client.post(f"/account/tokens/{mine}/revoke").status_code == 400  # no CSRF
    resp = client.post(f"/account/tokens/{mine}/revoke", data={"csrf_token": csrf})
    assert resp.status_code == 302
    assert client.get("/api/v1/rounds",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
    page = client.get("/account/tokens").get_data(as_text=True)
    assert "Återkallad" in page and f"/account/tokens/{mine}/revoke" not in page


# --- OpenID Connect -------------------------------------------------------------------

class TinyProvider:
    """An OpenID provider in ~60 lines: discovery, JWKS, an authorize endpoint that
    approves at once as ``self.person``, and a token endpoint issuing RS256 id_tokens."""

    def __init__(self) -> None:
        from joserfc.jwk import RSAKey
        from werkzeug.serving import make_server

        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.person = {"email": "", "email_verified": True}
        self.codes: dict[str, dict] = {}
        self.client = ("signflow", "s3cret")
        self.server = make_server("127.0.0.1", self.port, self.app(), threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def app(self) -> Flask:
        from flask import jsonify, redirect, request
        from joserfc import jwt

        app = Flask("tiny-oidc")
        iss = self.issuer

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(issuer=iss, authorization_endpoint=f"{iss}/authorize",
                           token_endpoint=f"{iss}/token", jwks_uri=f"{iss}/jwks",
                           response_types_supported=["code"],
                           id_token_signing_alg_values_supported=["RS256"],
                           code_challenge_methods_supported=["S256"])

        @app.get("/jwks")
        def jwks():
            return jsonify(keys=[self.key.as_dict(private=False)])

        @app.get("/authorize")
        def authorize():
            a = request.args
            assert a["response_type"] == "code" and a["client_id"] == self.client[0]
            assert a["code_challenge_method"] == "S256" and a["nonce"] and a["state"]
            code = uuid.uuid4().hex
            self.codes[code] = dict(a)
            return redirect(f"{a['redirect_uri']}?{urlencode({'code': code, 'state': a['state']})}")

        @app.post("/token")
        def token():
            asked = self.codes.pop(request.form["code"], None)
            if asked is None or request.authorization is None or \
                    (request.authorization.username, request.authorization.password) != \
                    self.client:
                return jsonify(error="invalid_grant"), 400
            challenge = base64.urlsafe_b64encode(hashlib.sha256(
                request.form["code_verifier"].encode()).digest()).rstrip(b"=").decode()
            if challenge != asked["code_challenge"]:
                return jsonify(error="invalid_grant", error_description="PKCE"), 400
            now = int(time.time())
            claims = {"iss": iss, "sub": "u1", "aud": self.client[0], "iat": now,
                      "exp": now + 300, "nonce": asked["nonce"], **self.person}
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
            return jsonify(access_token="at", token_type="Bearer", expires_in=300,
                           id_token=id_token)

        return app

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def oidc(settings, request):
    provider = TinyProvider()
    extra = {"oidc_organisation": "Familjen Helsingborg",
             **getattr(request, "param", {})}
    configured = settings.with_overrides(oidc_issuer=provider.issuer,
                                         oidc_client_id=provider.client[0],
                                         oidc_client_secret=provider.client[1], extra=extra)
    rt = build_runtime(configured)
    try:
        yield provider, create_app(configured, rt).test_client(), rt
    finally:
        rt.close()
        provider.close()


def oidc_sign_in(client, next_="/account/tokens"):
    """Follow the redirects between signflow (test client) and the provider (HTTP)."""
    page = client.get(f"/login?next={next_}").get_data(as_text=True)
    assert "organisationens konto" in page
    start = client.get(f"/login/oidc?next={next_}")
    assert start.status_code == 302
    back = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302
    callback = urlsplit(back.headers["Location"])
    assert callback.path == "/login/oidc/callback"
    return client.get(f"{callback.path}?{callback.query}")


def test_oidc_signs_in_a_user_by_verified_email(oidc):
    provider, client, rt = oidc
    make_user(rt, "chef@example.se")
    provider.person = {"email": "Chef@Example.se", "email_verified": True}
    resp = oidc_sign_in(client)
    assert resp.status_code == 302 and resp.headers["Location"] == "/account/tokens"
    assert client.get("/account/tokens").status_code == 200


@pytest.mark.parametrize("person", [{"email": "chef@example.se", "email_verified": False},
                                    {"email": "chef@example.se"},
                                    {"email": "okand@example.se", "email_verified": True}])
def test_oidc_refuses_unverified_and_unknown_addresses(oidc, person):
    provider, client, rt = oidc
    make_user(rt, "chef@example.se")
    provider.person = person
    resp = oidc_sign_in(client)
    assert resp.status_code == 403
    assert "inget konto" in resp.get_data(as_text=True)
    assert client.get("/account/tokens").status_code == 302


def test_oidc_speaks_only_for_its_own_organisations_staff(oidc):
    provider, client, rt = oidc
    make_user(rt, "chef@annan.se", org="Annan kommun")
    provider.person = {"email": "chef@annan.se", "email_verified": True}
    assert oidc_sign_in(client).status_code == 403
    assert client.get("/account/tokens").status_code == 302


@pytest.mark.parametrize("oidc", [{"oidc_tenant_id": "tenant-1"}], indirect=True)
@pytest.mark.parametrize("person,status", [
    ({"preferred_username": "chef@example.se", "tid": "tenant-1"}, 302),
    ({"email": "chef@example.se", "tid": "tenant-1"}, 302),
    ({"preferred_username": "chef@example.se", "tid": "tenant-2"}, 403),
    ({"preferred_username": "chef@example.se"}, 403),
])
def test_an_entra_tenant_vouches_for_its_own_addresses(oidc, person, status):
    provider, client, rt = oidc
    make_user(rt, "chef@example.se")
    provider.person = person
    assert oidc_sign_in(client).status_code == status


def test_an_issuer_without_its_organisation_is_refused_at_start(settings):
    from signflow.errors import ConfigError

    configured = settings.with_overrides(oidc_issuer="https://login.example.se",
                                         oidc_client_id="c", oidc_client_secret="s")
    rt = build_runtime(configured)
    try:
        with pytest.raises(ConfigError, match="SIGNFLOW_OIDC_ORGANISATION"):
            create_app(configured, rt)
    finally:
        rt.close()


def test_oidc_refuses_a_callback_whose_state_is_not_this_browsers(oidc):
    provider, client, rt = oidc
    make_user(rt, "chef@example.se")
    provider.person = {"email": "chef@example.se", "email_verified": True}
    start = client.get("/login/oidc")
    back = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    query = parse_qs(urlsplit(back.headers["Location"]).query)
    forged = client.get("/login/oidc/callback?" + urlencode(
        {"code": query["code"][0], "state": "someone-elses"}))
    assert forged.status_code == 403
    assert client.get("/account/tokens").status_code == 302


def test_without_an_issuer_there_is_no_oidc_button(client):
    assert "organisationens konto" not in client.get("/login").get_data(as_text=True)
    assert client.get("/login/oidc").status_code == 404
