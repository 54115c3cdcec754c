"""What the pages that start an identity order (signing, staff sign-in) ask of a
request: is this a phone, which flow was chosen, what was sent."""

from __future__ import annotations

import re

from flask import request

from signflow.adapters.bankid_messages import FLOWS
from signflow.web import json_sent

#: User-Agents of phones and tablets: their page leads with "Öppna BankID".
MOBILE_UA = re.compile(r"Mobi|Android|iPhone|iPad|iPod", re.IGNORECASE)


def on_phone() -> bool:
    return bool(MOBILE_UA.search(request.headers.get("User-Agent", "")))


def asked(name: str) -> str:
    """A parameter of the request: JSON body, form or query string."""
    body = json_sent() if request.is_json else None
    value = (body if isinstance(body, dict) else {}).get(name) or request.values.get(name)
    return str(value or "")


def chosen_flow() -> str:
    """``same_device`` (the app on this device) or ``qr`` (another device), as asked."""
    flow = asked("flow")
    return flow if flow in FLOWS else "qr"


def mobile_app_link() -> bool:
    """Whether the provider's app link should be the phone kind."""
    return asked("device") == "phone" or on_phone()
