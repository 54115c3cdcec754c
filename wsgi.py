"""WSGI entry point for gunicorn: ``gunicorn wsgi:app``."""

from signflow import create_app

app = create_app()
