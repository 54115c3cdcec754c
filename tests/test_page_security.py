"""Headers and checks every page carries: CSP with nonces, CSRF, caching, sessions."""

from __future__ import annotations

import re
import uuid

import pytest

from signflow import create_app
from tests.conftest import create_round, make_user
from tests.staff_kit import sign_in_client

PUBLIC_PAGES = ["/", "/verify", "/verify?lang=en", "/login", "/sign/not-a-real-link"]
STAFF_PAGES = ["/rounds", "/rounds?q=x&page=2", "/rounds/new", "/rounds/{round}",
               "/account/tokens"]


def scripts_and_styles_without_nonce(html: str, nonce: str) -> list[str]:
    tags = re.findall(r"<(?:script|style)\b[^>]*>", html)
    return [t for t in tags if f'nonce="{nonce}"' not in t and "src=" not in t]


def csp_of(resp) -> dict[str, str]:
    return {part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
            for part in resp.headers["Content-Security-Policy"].split(";")}


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_every_page_carries_the_security_headers(client, path):
    carries_the_security_headers(client.get(path, headers={"Accept": "text/html"}))


@pytest.fixture
def staff_round(client, settings, runtime, protocol_pdf) -> str:
    """A signed-in secretary's client, and the id of a round of their organisation."""
    email = f"headers-{uuid.uuid4().hex[:6]}@example.se"
    token = make_user(runtime, email)
    sign_in_client(client, settings, runtime, email)
    resp = create_round(client, {"Authorization": f"Bearer {token}"}, protocol_pdf)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_every_staff_page_carries_the_security_headers(client, staff_round, path):
    resp = client.get(path.format(round=staff_round), headers={"Accept": "text/html"})
    assert resp.status_code == 200
    carries_the_security_headers(resp)


@pytest.mark.parametrize("path", ["/rounds/{round}/document", "/rounds/{round}/prepared.pdf",
                                  "/rounds/{round}/events.pdf"])
def test_a_rounds_pdfs_are_not_cached_nor_framed(client, staff_round, path):
    resp = client.get(path.format(round=staff_round))
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert resp.headers["Content-Disposition"].startswith("attachment")


def carries_the_security_headers(resp) -> None:
    assert resp.mimetype == "text/html"
    csp = csp_of(resp)
    nonce = re.search(r"'nonce-([^']+)'", csp["script-src"]).group(1)
    assert len(nonce) >= 16
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert csp["frame-src"] == "'none'"  # no page of ours frames anything
    assert "'unsafe-inline'" not in resp.headers["Content-Security-Policy"]
    assert scripts_and_styles_without_nonce(resp.get_data(as_text=True), nonce) == []
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in resp.headers["Cache-Control"]
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP: no HSTS


def test_the_nonce_is_new_for_every_response(client):
    first = csp_of(client.get("/verify"))["script-src"]
    second = csp_of(client.get("/verify"))["script-src"]
    assert first != second


def test_hsts_over_https(client):
    resp = client.get("/verify", base_url="https://signflow.example.se")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_the_page_language_follows_the_request(client):
    assert '<html lang="sv">' in client.get("/verify").get_data(as_text=True)
    resp = client.get("/verify?lang=en")
    assert '<html lang="en">' in resp.get_data(as_text=True)
    assert "sf_lang=en" in resp.headers["Set-Cookie"]
    # remembered by the cookie the switch set
    assert '<html lang="en">' in client.get("/verify").get_data(as_text=True)


@pytest.mark.parametrize("url,language,link", [
    ("/login?next=/rounds/abc", "en", "?next=%2Frounds%2Fabc&lang=en"),
    ("/rounds?q=styrelse möte&status=&page=2&lang=en", "sv",
     "?q=styrelse+m%C3%B6te&status=&page=2&lang=sv"),
    ("/rounds?page=1&page=2", "en", "?page=1&page=2&lang=en"),
    ("/verify", "en", "?lang=en"),
    # an OIDC callback's one-time code and state are not carried into the page
    ("/login/oidc/callback?code=abc&state=xyz&next=/rounds", "en", "?next=%2Frounds&lang=en"),
])
def test_the_language_link_keeps_the_rest_of_the_query(app, url, language, link):
    from signflow.web.security import language_link

    with app.test_request_context(url):
        assert language_link(language) == link


def test_the_language_switch_on_a_page_keeps_the_search(client, settings, runtime):
    html = client.get("/login?next=/rounds&lang=en").get_data(as_text=True)
    assert 'href="?next=%2Frounds&amp;lang=sv"' in html
    email = f"lang-{uuid.uuid4().hex[:6]}@example.se"
    make_user(runtime, email)
    sign_in_client(client, settings, runtime, email)
    html = client.get("/rounds?q=protokoll&page=2").get_data(as_text=True)
    assert 'href="?q=protokoll&amp;page=2&amp;lang=sv"' in html  # English, from the cookie


def test_a_form_post_without_its_csrf_token_is_refused_and_changes_nothing(
        client, settings, runtime):
    email = f"csrf-{uuid.uuid4().hex[:6]}@example.se"
    make_user(runtime, email)
    sign_in_client(client, settings, runtime, email)
    assert client.get("/rounds").status_code == 200
    resp = client.post("/logout", headers={"Accept": "text/html"})
    assert resp.status_code == 400
    assert resp.mimetype == "text/html"  # a page saying what to do, not JSON
    assert client.get("/rounds").status_code == 200  # still signed in


def test_a_stranger_is_sent_to_login(client):
    resp = client.get("/rounds?q=x")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=/rounds")


def test_an_idle_session_ends(settings, runtime):
    email = f"idle-{uuid.uuid4().hex[:6]}@example.se"
    make_user(runtime, email)
    app = create_app(settings.with_overrides(session_idle_minutes=0), runtime)
    client = app.test_client()
    sign_in_client(client, settings, runtime, email)
    import time
    time.sleep(1.1)
    assert client.get("/rounds").status_code == 302


def test_session_cookie_flags(settings, runtime):
    plain = create_app(settings, runtime)
    assert plain.config["SESSION_COOKIE_HTTPONLY"] is True
    assert plain.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert plain.config["SESSION_COOKIE_SECURE"] is False
    https = create_app(settings.with_overrides(base_url="https://signflow.example.se"), runtime)
    assert https.config["SESSION_COOKIE_SECURE"] is True
    assert https.config["SESSION_COOKIE_NAME"].startswith("__Host-")


@pytest.mark.parametrize("target,expected", [
    ("/rounds/abc?q=1", "/rounds/abc?q=1"),
    ("/account/tokens", "/account/tokens"),
    ("/verify?document=9cf54af4000e4ae9a3665365", "/verify?document=9cf54af4000e4ae9a3665365"),
    ("//evil.example/", "/rounds"),
    ("/\t/evil.example", "/rounds"),
    ("/\n/evil.example", "/rounds"),
    ("/\r/evil.example", "/rounds"),
    ("/ /evil.example", "/rounds"),
    ("/\\evil.example", "/rounds"),
    ("/rounds//evil.example", "/rounds"),
    ("https://evil.example/rounds", "/rounds"),
    ("/sign/some-token", "/rounds"),
    ("", "/rounds"),
    (None, "/rounds"),
])
def test_sign_in_only_leads_back_to_our_own_staff_pages(target, expected):
    from signflow.web.staff import safe_next

    assert safe_next(target) == expected


def test_sign_out_ends_every_copy_of_the_session_cookie(client, settings, runtime):
    from tests.staff_kit import cookie_name

    email = f"logout-{uuid.uuid4().hex[:6]}@example.se"
    make_user(runtime, email)
    sign_in_client(client, settings, runtime, email)
    page = client.get("/rounds").get_data(as_text=True)
    copied = client.get_cookie(cookie_name(settings)).value
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/rounds").status_code == 302
    client.set_cookie(cookie_name(settings), copied)  # the cookie kept from before
    assert client.get("/rounds").status_code == 302
