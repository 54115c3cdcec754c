"""signflow: e-signature rounds for meeting protocols, with an audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING

from signflow.config import Settings, ensure_secret_key, load_settings

if TYPE_CHECKING:  # Flask is imported by create_app: `signflow verify` starts without it
    from flask import Flask

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, runtime=None) -> Flask:
    """Wire config, database, adapters, blueprints and error handling."""
    from flask import Flask
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.middleware.proxy_fix import ProxyFix

    from signflow import logs, metrics, scheduler
    from signflow.dispatch import start_delivery
    from signflow.runtime import build_runtime
    from signflow.web import (
        account,
        api,
        close_db,
        dev,
        errors,
        health,
        integrations,
        limits,
        login,
        openapi,
        pages,
        pki,
        redact,
        secretariat,
        security,
        sign,
        staff,
    )

    settings = ensure_secret_key(settings or load_settings())
    runtime = runtime or build_runtime(settings)
    start_delivery(runtime)  # embedded: a thread retries the outbox (with Redis: the dispatcher)
    scheduler.start(runtime)  # embedded: housekeeping in a thread (with Redis: its own process)
    app = Flask(__name__, static_folder="static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=max(settings.max_upload_bytes, settings.verify_max_bytes)
        + 1024 * 1024,
        TESTING=settings.testing,
        JSON_SORT_KEYS=False,
        SIGNFLOW_ACCESSIBILITY_URL=settings.accessibility_url,
    )
    app.extensions["signflow"] = runtime
    logs.init_app(app)  # first: every response, refused ones too, gets a request ID
    metrics.init_app(app)
    app.teardown_appcontext(close_db)
    for bp in (health.bp, api.bp, openapi.bp, sign.bp, pki.bp, pages.bp, login.bp,
               secretariat.bp, account.bp, integrations.bp):
        app.register_blueprint(bp)
    if settings.dev_mode:
        app.register_blueprint(dev.bp)
    errors.register(app)
    limits.init_app(app, settings)  # size, cost, rate and concurrency of public verification
    # bearer-token API, OCSP/TSA clients and the signing page (which checks its own
    # forms and the Origin of its JSON calls) are outside the session's CSRF check
    security.install(app, exempt=[api.bp, pki.bp, sign.bp, dev.bp])
    staff.configure(app, settings)
    redact.install()  # signing-link tokens never reach the request logs
    mounts = {}
    for name in _simulated_providers(settings, runtime):
        build = runtime.providers.build(name)
        if build.simulator_app is not None:
            mounts[build.mount] = build.simulator_app
    if mounts:
        app.wsgi_app = DispatcherMiddleware(app.wsgi_app, mounts)  # type: ignore[method-assign]
    if settings.proxy_hops > 0:
        # only as many X-Forwarded-* entries as there are proxies we run are believed:
        # a client can write the header too, but cannot make our proxy drop its own
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    return app


def _simulated_providers(settings: Settings, runtime) -> list[str]:
    """Whose simulator pages to serve: they let anyone approve an order as anyone.

    Every provider's in development mode; outside it only BankID's, and only when
    ``SIGNFLOW_ALLOW_DEV_BANKID`` chose the simulator (a staging demo signs there).
    """
    if settings.dev_mode:
        return list(runtime.providers)
    return ["bankid"] if settings.allow_dev_bankid and not settings.bankid_url else []
