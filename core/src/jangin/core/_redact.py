"""Keep secrets out of what is shown or logged: API keys, session cookies, credentials in URLs.

:class:`RedactingFilter` is a :class:`logging.Filter` that rewrites each record's message (uvicorn's
access log included) before any handler formats it; :func:`redact_url` strips ``user:password@`` from a
URL (an RTSP camera's, typically) wherever it is displayed.
"""

from __future__ import annotations

import logging
import re

__all__ = ["REDACTED", "RedactingFilter", "install_log_redaction", "redact_text", "redact_url"]

REDACTED = "***"

#: ``scheme://user:pass@host`` or ``scheme://token@host``: everything between ``//`` and ``@``.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # query parameters that carry a secret (?api_key=…, &token=…)
    (
        re.compile(
            r"(?i)(?P<k>[?&;](?:api[_-]?key|apikey|key|token|access_token|session|password|secret)=)[^&\s\"']*"
        ),
        r"\g<k>" + REDACTED,
    ),
    # header-like text: "X-API-Key: …", "authorization=Bearer …", "Cookie: jangin_session=…"
    (
        re.compile(
            r"(?i)(?P<k>\b(?:x-api-key|authorization|cookie|set-cookie)\b[\"']?\s*[:=]\s*[\"']?)[^\"'\n,}]*"
        ),
        r"\g<k>" + REDACTED,
    ),
    (re.compile(r"(?i)(?P<k>\bbearer\s+)[A-Za-z0-9._~+/=-]+"), r"\g<k>" + REDACTED),
    (re.compile(r"(?P<k>\bjangin_session=)[^;\s\"']+"), r"\g<k>" + REDACTED),
]


def redact_url(url: str) -> str:
    """``rtsp://user:pass@cam/stream`` → ``rtsp://***@cam/stream``; anything else unchanged."""
    return _URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", url)


def redact_text(text: str) -> str:
    """``text`` with API keys, bearer tokens, session cookies and URL credentials replaced by ``***``."""
    text = redact_url(text)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (``msg % args``) with :func:`redact_text`; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for the handler to report
            return True
        clean = redact_text(message)
        if clean != message or record.args:
            record.msg = clean
            record.args = None
        if record.exc_info and not record.exc_text:  # format the traceback now, so it is redacted too
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


_TRACEBACKS = logging.Formatter()


_FILTER = RedactingFilter()
#: Loggers whose records are filtered at the source (a logger's filter runs before propagation, so the
#: record is clean for every handler, whoever configured it). The root's handlers get it too.
_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "jangin", "fastapi", "httpx")


def install_log_redaction() -> None:
    """Attach the redacting filter to uvicorn's, Jangin's and the root logger's handlers (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
