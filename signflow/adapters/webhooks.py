"""Webhook deliveries over HTTP(S) with requests."""

from __future__ import annotations

from collections.abc import Mapping

import requests


class HttpWebhooks:
    """POSTs with bounded waits and no redirects (a receiver that moved must be
    registered anew: following a redirect would send the body somewhere unchecked)."""

    def __init__(self, connect_timeout: float = 5.0, read_timeout: float = 10.0) -> None:
        self.timeout = (connect_timeout, read_timeout)

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        resp = requests.post(url, data=body, headers=dict(headers), timeout=self.timeout,
                             allow_redirects=False)
        resp.close()
        return resp.status_code
