"""A requests transport that hands requests to a WSGI app in the same process.

It lets the BankID client (plain requests) talk to the built-in simulator
without a socket, so `make run` needs no second server and the very same
client code runs against the real API.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.test import Client


class WSGITransport(BaseAdapter):
    def __init__(self, app) -> None:
        super().__init__()
        self.app = app

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        body = request.body.encode("utf-8") if isinstance(request.body, str) else request.body
        resp = Client(self.app, use_cookies=False).open(
            path=parts.path, method=request.method, query_string=parts.query,
            headers=list(request.headers.items()), data=body or b"",
        )
        out = requests.Response()
        out.status_code = resp.status_code
        out._content = resp.get_data()
        out.headers = CaseInsensitiveDict(resp.headers)
        out.url = request.url
        out.request = request
        out.encoding = "utf-8"
        return out

    def close(self) -> None:
        pass


def in_process_session(app, base_url: str) -> requests.Session:
    session = requests.Session()
    session.mount(base_url, WSGITransport(app))
    return session
