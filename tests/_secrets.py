"""Scanning text for credentials: shared by the library's secret scan and the CLI's.

Use :func:`assert_no_secret` on anything a person could see (a repr, an error
message, a formatted traceback, log records, a command's stdout, stderr or
journal). It fails when a secret appears whole, or when any piece of one at
least :data:`MIN_PIECE` characters long does (a truncated or partly redacted
secret is still a leak), or the whole secret as JSON, ``repr`` or a URL would
escape it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import Iterable
from urllib.parse import quote

__all__ = ["MIN_PIECE", "assert_no_secret", "exception_texts", "log_texts"]

#: The shortest piece of a secret that counts as a leak.
MIN_PIECE = 6


def _spellings(secret: str) -> set[str]:
    """The secret as written, and as JSON, ``repr`` and percent-encoding would spell it."""
    spellings = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], quote(secret, safe="")}
    with contextlib.suppress(UnicodeEncodeError):
        spellings.add(repr(secret.encode())[2:-1])  # as it shows inside a bytes repr
    return {spelling for spelling in spellings if spelling}


def _pieces(spelling: str, size: int) -> set[str]:
    if len(spelling) <= size:
        return {spelling}
    return {spelling[start : start + size] for start in range(len(spelling) - size + 1)}


def assert_no_secret(
    text: str, secrets: Iterable[str], *, where: str = "text", min_piece: int = MIN_PIECE
) -> None:
    """Fail if any secret, or any piece of one ``min_piece`` characters or longer, is in ``text``.

    Args:
        text: What a person could see.
        secrets: The credential values in play (empty ones are ignored).
        where: Names the text in the failure message.
        min_piece: The shortest piece that counts (secrets shorter than this
            count only whole).

    Raises:
        AssertionError: Naming where, which secret (by position, never its
            value) and an excerpt with the piece masked.
    """
    for number, secret in enumerate(secrets):
        if not secret:
            continue
        # Pieces of the secret as written; escaped spellings only whole (pieces of
        # those are mostly escape digits, which turn up in any number).
        pieces = _pieces(secret, min_piece) | _spellings(secret)
        for piece in sorted(pieces, key=len, reverse=True):
            at = text.find(piece)
            if at < 0:
                continue
            before = text[max(0, at - 40) : at]
            after = text[at + len(piece) : at + len(piece) + 40]
            raise AssertionError(
                f"secret #{number} (or a {len(piece)}-character piece of it) is in {where}: "
                f"...{before}<<SECRET>>{after}..."
            )


def exception_texts(error: BaseException) -> list[str]:
    """Everything an exception shows: str, repr, its attributes, the formatted traceback.

    The traceback includes chained causes and contexts; attributes include a
    kept request or response (headers and body) where there is one.
    """
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.extend([str(current), repr(current)])
        attributes = getattr(current, "__dict__", {})
        texts.append(repr(attributes))
        for name in ("request", "response"):
            # getattr, not the __dict__: an error keeps its response packed, behind a property.
            kept = getattr(current, name, None)
            if kept is None:
                continue
            texts.append(repr(getattr(kept, "headers", None) and kept.headers.raw))
            texts.append(repr(getattr(kept, "url", "")))
            content = getattr(kept, "content", b"")
            texts.append(content.decode("utf-8", "replace") if content else "")
            inner = getattr(kept, "request", None)
            if inner is not None and name == "response":
                texts.append(repr(inner.headers.raw))
                texts.append(inner.content.decode("utf-8", "replace"))
        # The chain as a traceback prints it: the cause, else the context unless suppressed.
        if current.__cause__ is not None:
            current = current.__cause__
        else:
            current = None if current.__suppress_context__ else current.__context__
    return texts


def log_texts(records: Iterable[logging.LogRecord]) -> list[str]:
    """Every log record as a person would read it: message, arguments, exception text."""
    formatter = logging.Formatter()
    texts: list[str] = []
    for record in records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
    return texts
