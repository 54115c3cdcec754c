"""One small hierarchy of signflow errors.

Errors carry a stable machine ``code`` and a human ``message``; the web layer
maps each class to an HTTP status, the CLI to an exit code.  The domain never
knows about HTTP.
"""

from __future__ import annotations


class SignflowError(Exception):
    """Base of every error signflow raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, **fields: object) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields


class ConfigError(SignflowError):
    """The configuration cannot work (bad value, missing key file)."""

    code = "config"


class InvalidInput(SignflowError):
    """The caller sent something malformed; nothing was changed."""

    code = "invalid_input"


class UnsupportedDocument(InvalidInput):
    """The upload is not a PDF we can sign (not a PDF, encrypted, too large…)."""

    code = "unsupported_document"


class NotFound(SignflowError):
    """No such object, or not one the caller may see (we do not tell which)."""

    code = "not_found"


class Unauthorized(SignflowError):
    """No valid credentials."""

    code = "unauthorized"


class Forbidden(SignflowError):
    """Valid credentials, but the role may not do this."""

    code = "forbidden"


class IllegalTransition(SignflowError):
    """The object's state does not allow this step (e.g. signing a cancelled round)."""

    code = "conflict"


class Busy(SignflowError):
    """No room for this work now; nothing was done.  ``retry_after`` (seconds) says
    when asking again makes sense."""

    code = "busy"


class RateLimited(Busy):
    """This caller asked too often; ``retry_after`` (seconds) says when it may again."""

    code = "rate_limited"


class ProviderError(SignflowError):
    """The identity provider (BankID) refused or failed; ``fields`` say how."""

    code = "provider_error"
