"""Validation and request building: everything that happens before any I/O.

Each check raises :class:`~hiveon_async.InvalidRequestError` with a message
that names the field (or environment variable) at fault and never the value of
a credential.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import httpx

from ._config import DEFAULT_BASE_URL
from ._errors import InvalidRequestError
from ._version import __version__

API_KEY_ENV = "HIVEON_API_KEY"
BASE_URL_ENV = "HIVEON_BASE_URL"
CLORE_API_KEY_ENV = "CLORE_API_KEY"
CLORE_API_KEY = "CLORE_API_KEY"

STOP_PATH = "/vendors/v1/machines/deployments/{deployment_id}/stop"

#: Deployment ids we send: ASCII letters, digits, '-', '_' and '.', 1 to 128 of them.
#: All of these are RFC 3986 "unreserved" characters, so a valid id is a single
#: path segment that needs no escaping (the hot path skips ``quote``). A property
#: test fails if the allowlist ever admits a character that would need it.
_DEPLOYMENT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: Printable ASCII without spaces: what an HTTP header value can carry verbatim.
_API_KEY = re.compile(r"[\x21-\x7e]+")

_MAX_SHOWN_ID = 40


def _shown(value: str) -> str:
    """Return a short printable form of a rejected id (ids are not secrets, but may be huge)."""
    if len(value) > _MAX_SHOWN_ID:
        return repr(value[:_MAX_SHOWN_ID]) + f"... ({len(value)} characters)"
    return repr(value)


def plain_str(value: object) -> str | None:
    """Return ``value`` as an exact ``str`` when it is one (a subclass reduced), else None.

    A ``str`` subclass can override ``__format__``, ``__str__``, ``encode``,
    ``__eq__`` or ``__hash__``: checked as one value, it could be sent as
    another (an f-string, httpx's header encoding). Everything after the check
    uses the plain copy. ``type()`` is asked, not ``isinstance``, which an
    object's ``__class__`` property can fool.
    """
    if type(value) is str:
        return value  # exactly a str
    if isinstance(value, str) and issubclass(type(value), str):  # not just posing as one
        return str.__str__(value)  # the characters, as a plain str
    return None


def type_name(value: object) -> str:
    """The name of ``value``'s type, for a message; never raises (a metaclass may try)."""
    try:
        name = type(value).__name__
    except Exception:  # whatever a hostile metaclass raises
        return "object"
    return name if type(name) is str else "object"


def deployment_path_segment(deployment_id: object) -> str:
    """Check a deployment id and return it encoded as one path segment.

    Args:
        deployment_id: The id as the caller gave it.

    Returns:
        The path segment: the id itself, as a plain ``str`` (a subclass is
        reduced first, so that what is checked is what is sent), which needs
        no percent-encoding.

    Raises:
        InvalidRequestError: The id is not a string of 1 to 128 ASCII letters,
            digits, ``-``, ``_`` or ``.``, or is ``.`` or ``..``.
    """
    plain = plain_str(deployment_id)
    if plain is None:
        raise InvalidRequestError(f"deployment_id must be a str, not {type_name(deployment_id)}")
    deployment_id = plain
    if _DEPLOYMENT_ID.fullmatch(deployment_id) is None or deployment_id in (".", ".."):
        raise InvalidRequestError(
            f"deployment_id {_shown(deployment_id)} is not valid: use 1 to 128 ASCII letters, "
            "digits, '-', '_' or '.' (and not '.' or '..')",
            deployment_id=deployment_id,
        )
    return deployment_id  # only unreserved characters: nothing to escape


def resolve_api_key(api_key: str | None) -> str:
    """Return the vendor API key to send, from the argument or ``$HIVEON_API_KEY``.

    Args:
        api_key: The key given to the client, or None to read the environment.

    Returns:
        The key, checked to be a valid header value.

    Raises:
        InvalidRequestError: No key was given or found, or it is not printable
            ASCII without whitespace. The message never contains the key.
    """
    if api_key is None:
        api_key = os.environ.get(API_KEY_ENV)
        if not api_key:
            raise InvalidRequestError(
                f"no API key: pass api_key=... or set the environment variable ${API_KEY_ENV}"
            )
    plain = plain_str(api_key)
    if plain is None:
        raise InvalidRequestError(f"api_key must be a str, not {type_name(api_key)}")
    api_key = plain
    if _API_KEY.fullmatch(api_key) is None:
        # httpx's own error for a bad header value quotes the value; ours must not.
        raise InvalidRequestError(
            "api_key must be printable ASCII without whitespace (the key itself is not shown)"
        )
    return api_key


def check_metadata(metadata: object, *, field: str = "metadata") -> dict[str, str]:
    """Check that ``metadata`` is a mapping of str to str and return a copy.

    Args:
        metadata: The caller's metadata, or None for none.
        field: The name to use in error messages.

    Returns:
        A new dict with the same items, as plain ``str`` (subclasses reduced).

    Raises:
        InvalidRequestError: It is not a mapping, or a key or value is not a str.
            Messages name keys, never values.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidRequestError(f"{field} must be a mapping, not {type_name(metadata)}")
    try:
        items = list(metadata.items())
    except Exception as exc:  # a broken mapping is the caller's input error
        raise InvalidRequestError(
            f"{field} could not be read: its items() raised {type_name(exc)}"
        ) from None
    checked: dict[str, str] = {}
    for key, value in items:
        plain_key = plain_str(key)
        if plain_key is None:
            raise InvalidRequestError(f"{field} keys must be str, not {type_name(key)}")
        plain_value = plain_str(value)
        if plain_value is None:
            raise InvalidRequestError(
                f"{field}[{plain_key!r}] must be a str, not {type_name(value)}"
            )
        checked[plain_key] = plain_value
    return checked


def default_metadata(metadata: object) -> dict[str, str]:
    """Return the client's default metadata, with ``CLORE_API_KEY`` from the environment.

    ``$CLORE_API_KEY`` fills in ``CLORE_API_KEY`` when the given metadata has none.

    Args:
        metadata: The metadata given to the client, or None.

    Returns:
        The checked default metadata (it may still lack ``CLORE_API_KEY``;
        that is an error only when a call needs it).
    """
    checked = check_metadata(metadata)
    if CLORE_API_KEY not in checked:
        from_env = os.environ.get(CLORE_API_KEY_ENV)
        if from_env:
            checked[CLORE_API_KEY] = from_env
    return checked


def encode_body(metadata: Mapping[str, str]) -> bytes:
    """Return the JSON body for a stop call, checking that ``CLORE_API_KEY`` is there.

    Args:
        metadata: The merged, already-checked metadata.

    Returns:
        ``{"metadata": {...}}`` as compact UTF-8 JSON.

    Raises:
        InvalidRequestError: ``CLORE_API_KEY`` is missing or empty, or a key or
            value cannot be sent as UTF-8 (a lone surrogate, as from an
            environment variable holding bytes that are not UTF-8).
    """
    clore_key = metadata.get(CLORE_API_KEY)
    if not clore_key:
        state = "is empty" if clore_key == "" else "is missing"
        raise InvalidRequestError(
            f"metadata[{CLORE_API_KEY!r}] {state}: pass metadata={{{CLORE_API_KEY!r}: ...}} "
            f"or set the environment variable ${CLORE_API_KEY_ENV}"
        )
    payload: dict[str, Any] = {"metadata": dict(metadata)}
    # The error is raised below, outside any handler: the encoder's error (which would
    # be its context) quotes the whole body.
    with contextlib.suppress(UnicodeEncodeError):
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    # Name the key, never the value (or a piece of it): it may be a credential.
    bad = next(key for key, value in metadata.items() if not _is_utf8(key + value))
    raise InvalidRequestError(
        f"metadata[{bad!r}] cannot be sent: its key or value is not valid Unicode text "
        "(a lone surrogate)"
    )


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(base_url: object) -> httpx.URL:
    """Return the checked API root: the argument, else ``$HIVEON_BASE_URL``, else production.

    Raises:
        InvalidRequestError: The URL is refused (see :func:`check_base_url`); when
            it came from the environment, the message names the variable.
    """
    if base_url is not None:
        return check_base_url(base_url)
    from_env = os.environ.get(BASE_URL_ENV)
    if not from_env:
        return check_base_url(DEFAULT_BASE_URL)
    try:
        return check_base_url(from_env)
    except InvalidRequestError as exc:
        raise InvalidRequestError(f"${BASE_URL_ENV}: {exc}") from None


def check_base_url(base_url: object) -> httpx.URL:
    """Check the base URL: ``https``, or plain ``http`` for loopback hosts only.

    Args:
        base_url: The URL given to the client.

    Returns:
        The URL, without a trailing slash.

    Raises:
        InvalidRequestError: The URL is malformed, has credentials, a query or
            a fragment, or is plain ``http`` to a host that is not loopback.
    """
    if not isinstance(base_url, httpx.URL):
        plain = plain_str(base_url)
        if plain is None:
            raise InvalidRequestError(f"base_url must be a str, not {type_name(base_url)}")
        base_url = plain
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        raise InvalidRequestError("base_url is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidRequestError("base_url must be an absolute http(s) URL, e.g. https://host")
    if url.userinfo:
        raise InvalidRequestError("base_url must not contain credentials")
    if url.query or url.fragment:
        raise InvalidRequestError("base_url must not have a query or a fragment")
    if url.scheme == "http" and not _is_loopback(url.host):
        raise InvalidRequestError(
            f"base_url must use https (plain http is allowed only for loopback hosts, "
            f"not {url.host!r}): the API key would travel in clear text"
        )
    return url.copy_with(path=url.path.rstrip("/"))


def request_headers(api_key: str) -> dict[str, str]:
    """Return the headers every stop request carries."""
    return {
        "X-API-Key": api_key,
        "Content-Type": "application/json",
        "Accept": "application/json",
        # The answer is a few bytes; compression only adds a decompression-bomb risk.
        "Accept-Encoding": "identity",
        "User-Agent": f"hiveon-async/{__version__}",
    }
