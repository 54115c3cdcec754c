"""WSGI entry point for gunicorn: ``gunicorn wsgi:app``.

Production by default: no development mode, JSON logs.  A configuration that
cannot work stops the start with one line naming what is missing, instead of a
traceback per gunicorn worker.
"""

from signflow import create_app, logs
from signflow.config import ensure_secret_key, load_settings
from signflow.errors import ConfigError
from signflow.pdf import isolate

#: gunicorn's exit status for "App failed to load": the arbiter stops, not retries.
APP_LOAD_ERROR = 4

try:
    settings = ensure_secret_key(load_settings())
    logs.configure(settings, default="json")
    app = create_app(settings)
    isolate.warm()  # each gunicorn worker's sandbox template, ready before the first upload
except ConfigError as exc:
    logs.refuse(exc.message)  # a JSON line once JSON logging is set up
    raise SystemExit(APP_LOAD_ERROR) from None
