"""What every page carries: security headers, a CSP nonce, CSRF protection, language.

- Content-Security-Policy with a fresh nonce per response: a ``<script>`` or
  ``<style>`` element runs only with ``nonce="{{ csp_nonce() }}"``; inline
  ``style=""`` attributes and event-handler attributes never run.
- Flask-WTF's CSRF check on every form POST.  The JSON API (bearer tokens),
  the PKI endpoints (OCSP/TSA clients) and the signing page (which checks
  forms itself and the Origin of its JSON calls) are exempt here.
- The language: a view may decide (``g.locale``, the signer's round), else
  ``?lang=`` (remembered in a cookie), else Swedish.  The switch links to the
  same page with the same query, only ``lang`` changed (:func:`language_link`).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from flask import Flask, Response, g, request
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from signflow.i18n import DEFAULT_LANGUAGE, LANGUAGES, TRANSLATIONS

csrf = CSRFProtect()
LANG_COOKIE = "sf_lang"


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def current_language() -> str:
    chosen = g.get("locale")
    if chosen in LANGUAGES:
        return chosen
    asked = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    return asked if asked in LANGUAGES else DEFAULT_LANGUAGE


def use_language(language: str) -> None:
    """Render this request in *language* (a round's, for its signer's pages)."""
    from flask_babel import refresh

    g.locale = language if language in LANGUAGES else DEFAULT_LANGUAGE
    refresh()


#: What the language switch carries over: a sign-in's destination, a search and its
#: page, the document a QR code named; never a one-time code or state (an OIDC
#: callback's), which the link would put in the page and replay.
KEPT_QUERY = frozenset({"next", "q", "status", "page", "per_page", "document"})


def language_link(language: str) -> str:
    """A relative link to this page in *language*: the query kept, ``lang`` replaced
    (a sign-in's ``next``, a search and its page number survive the switch)."""
    kept = [(key, value) for key, value in request.args.items(multi=True) if key in KEPT_QUERY]
    return "?" + urlencode([*kept, ("lang", language)])


def stockholm_time(value, *, seconds: bool = False) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    local = value.astimezone(ZoneInfo("Europe/Stockholm"))
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _csp(nonce: str) -> str:
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-src 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _headers(resp: Response) -> Response:
    h = resp.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    # page URLs may hold a signing-link token: never send them on to anyone
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if resp.mimetype == "text/html":
        h["Content-Security-Policy"] = _csp(csp_nonce())
        h.setdefault("X-Frame-Options", "DENY")
    elif resp.mimetype == "application/pdf":
        # no page of ours frames a PDF: it opens in a tab of its own or downloads
        h.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    if not request.path.startswith("/static/"):
        # signing pages, documents and staff pages are nobody's cache's business
        h["Cache-Control"] = "no-store"
        h.pop("Expires", None)
    if request.is_secure:
        h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    asked = request.args.get("lang")
    if asked in LANGUAGES and "locale" not in g and request.cookies.get(LANG_COOKIE) != asked:
        resp.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, httponly=True,
                        samesite="Lax", secure=request.is_secure)
    return resp


def install(app: Flask, *, exempt: list) -> None:
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # bound to the session instead
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/Stockholm")
    Babel(app, locale_selector=current_language,
          timezone_selector=lambda: "Europe/Stockholm")
    csrf.init_app(app)
    for bp in exempt:
        csrf.exempt(bp)
    app.after_request(_headers)

    @app.template_filter("local_time")
    def _local_time(value, seconds: bool = False) -> str:
        """An aware datetime (or RFC 3339 text) as Europe/Stockholm wall time."""
        return stockholm_time(value, seconds=seconds)

    @app.context_processor
    def _page_helpers():
        from flask_wtf.csrf import generate_csrf

        return {"csp_nonce": csp_nonce, "page_language": current_language,
                "csrf_token": generate_csrf, "languages": LANGUAGES,
                "language_link": language_link}
