"""The secretariat's pages: the rounds list, a new round, a round's own page."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("secretariat", __name__)
