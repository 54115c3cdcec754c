"""Staff sign-in with the organisation's own account (OpenID Connect, Authlib).

Configured by ``SIGNFLOW_OIDC_ISSUER``, ``SIGNFLOW_OIDC_CLIENT_ID`` and
``SIGNFLOW_OIDC_CLIENT_SECRET``.  The authorization-code flow with PKCE (S256),
``state`` and ``nonce`` (Authlib keeps them in the session until the
callback).

One issuer serves one organisation (``SIGNFLOW_OIDC_ORGANISATION``, required):
whoever runs that identity provider can vouch only for that organisation's
staff, never for another's.  A person is let in only as an existing user of
it whose e-mail address the provider says it has verified
(``email_verified``).  Entra ID sends no ``email_verified``; with
``SIGNFLOW_OIDC_TENANT_ID`` set, an id_token of that tenant (``tid``) vouches
for its ``email`` or ``preferred_username`` instead.  Anyone else is refused
without being told more.
"""

from __future__ import annotations

import logging

from flask import current_app, redirect, render_template, request, session
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _

from signflow.core.accounts import user_by_email
from signflow.errors import ConfigError, NotFound
from signflow.web import db, staff

log = logging.getLogger(__name__)

CLIENT = "signflow.oidc"
NEXT = "oidc_next"


def setup(state: BlueprintSetupState) -> None:
    """Register the OIDC client on the app, when an issuer is configured."""
    from authlib.integrations.flask_client import OAuth

    app = state.app
    settings = app.extensions["signflow"].settings
    if not settings.oidc_issuer:
        return
    if not settings.extra.get("oidc_organisation", "").strip():
        raise ConfigError("SIGNFLOW_OIDC_ORGANISATION must name the organisation whose staff "
                          "sign in through SIGNFLOW_OIDC_ISSUER")
    oauth = OAuth(app)
    app.extensions[CLIENT] = oauth.register(
        "organisation", client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=(settings.oidc_issuer.rstrip("/")
                             + "/.well-known/openid-configuration"),
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )


def configured() -> bool:
    return CLIENT in current_app.extensions


def _client():
    client = current_app.extensions.get(CLIENT)
    if client is None:
        raise NotFound("single sign-on is not configured")
    return client


def begin():
    """Off to the organisation's sign-in page; it sends the person back to the callback."""
    client = _client()
    session[NEXT] = staff.safe_next(request.args.get("next"))
    base = current_app.extensions["signflow"].settings.base_url
    return client.authorize_redirect(f"{base}/login/oidc/callback")


def callback():
    from authlib.integrations.base_client import OAuthError

    client = _client()
    target = session.pop(NEXT, None)
    try:
        token = client.authorize_access_token()
    except (OAuthError, ValueError) as exc:
        # a refused consent, a stale or forged state, a bad id_token: nothing is said
        # about which; the reason goes to the log
        log.info("single sign-on failed: %s", type(exc).__name__)
        return _refused(_("Signing in with your organisation's account did not work. "
                          "Try again."))
    claims = token.get("userinfo") or {}
    settings = current_app.extensions["signflow"].settings
    email = _vouched_email(claims, settings.extra.get("oidc_tenant_id", "").strip())
    user = user_by_email(db(), email) if email else None
    if user is not None and \
            user.organisation.name != settings.extra["oidc_organisation"].strip():
        user = None  # this issuer does not speak for other organisations' staff
    if user is None:
        log.info("single sign-on refused: no user with that verified e-mail address")
        from signflow.web.login import unknown_person

        return _refused(unknown_person())
    staff.sign_in(user, "oidc")
    log.info("staff sign-in: user %s (%s) with single sign-on", user.id, user.role)
    return redirect(staff.safe_next(target))


def _vouched_email(claims: dict, tenant: str) -> str:
    """The e-mail address the provider vouches for, or "" if it vouches for none."""
    if claims.get("email_verified") is True:
        return str(claims.get("email") or "")
    if tenant and claims.get("tid") == tenant:  # Entra ID: the tenant owns its addresses
        return str(claims.get("email") or claims.get("preferred_username") or "")
    return ""


def _refused(message: str):
    return render_template("login_refused.html", message=message), 403
