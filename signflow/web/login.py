"""Staff sign-in: BankID (RP auth), OpenID Connect where configured, sign-out."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("login", __name__)
