"""Which HTTP library a client speaks: httpx (the default) or httpx2, its maintained fork.

httpx2 has httpx's API under another import name (``httpx2``, over ``httpcore2``),
and its classes are not httpx's: an ``httpx2.AsyncClient`` sends ``httpx2.Request``
objects, raises ``httpx2.ConnectError``, and refuses httpx's. So a client speaks
one library throughout, chosen once from what the user passed
(:func:`library_of`): its requests, its pool's connections, the exceptions its
typed errors are raised from, the responses they keep.

httpx2 is imported only when the user passed one of its objects, which means it
was imported already: without the ``httpx2`` extra nothing here imports it.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING, TypeAlias, TypeVar, cast

import httpcore
import httpx

from ._errors import InvalidRequestError

if TYPE_CHECKING:
    import httpx2

    #: A user's client, transport or timeout: httpx's or httpx2's (the annotations' names).
    AnyAsyncClient: TypeAlias = httpx.AsyncClient | httpx2.AsyncClient
    AnyTransport: TypeAlias = httpx.AsyncBaseTransport | httpx2.AsyncBaseTransport
    AnyTimeout: TypeAlias = httpx.Timeout | httpx2.Timeout

__all__ = ["HTTPX", "HttpLibrary", "library_of", "named"]

_T = TypeVar("_T")

#: The transport exceptions httpcore and httpx both define, by the same names; the
#: lean pool raises the httpx one of each httpcore one, most specific first.
_SHARED_ERRORS = (
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "TimeoutException",
    "ConnectError",
    "ReadError",
    "WriteError",
    "NetworkError",
    "ProxyError",
    "UnsupportedProtocol",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ProtocolError",
)
#: Failures that happen before the request can have reached the server.
_NOT_SENT = (
    "ConnectError",
    "ConnectTimeout",
    "PoolTimeout",
    "UnsupportedProtocol",
    "LocalProtocolError",
)


class HttpLibrary:
    """One HTTP library: its modules and the exception classes the client looks at.

    httpx's own exception classes are always among :attr:`transport_errors`,
    :attr:`not_sent` and :attr:`timeouts`: the client's own failures (an
    attempt's wall-clock bound, a head over the cap, a client on a dead event
    loop) are raised as httpx's, whichever library sends.

    Attributes:
        name: ``httpx`` or ``httpx2``.
        http: The library (``httpx`` or ``httpx2``).
        core: The connection library under it (``httpcore`` or ``httpcore2``).
        transport_errors: What a send raises when there is no (complete) response.
        not_sent: Those of them that mean the request cannot have left.
        timeouts: Those of them that are timeouts.
        equivalents: (core exception, library exception) pairs, most specific first.
    """

    __slots__ = (
        "_flavours",
        "core",
        "equivalents",
        "http",
        "name",
        "not_sent",
        "timeouts",
        "transport_errors",
    )

    def __init__(self, name: str, http: ModuleType, core: ModuleType) -> None:
        self.name = name
        self.http = http
        self.core = core
        ours = () if http is httpx else (httpx,)
        self.transport_errors: tuple[type[Exception], ...] = tuple(
            module.TransportError for module in (http, *ours)
        )
        self.not_sent: tuple[type[Exception], ...] = tuple(
            getattr(module, error) for module in (http, *ours) for error in _NOT_SENT
        )
        self.timeouts: tuple[type[Exception], ...] = tuple(
            module.TimeoutException for module in (http, *ours)
        )
        self.equivalents: tuple[tuple[type[Exception], type[Exception]], ...] = tuple(
            (getattr(core, error), getattr(http, error)) for error in _SHARED_ERRORS
        )
        self._flavours: dict[tuple[type[object], str], type[object]] = {}

    def __repr__(self) -> str:
        return f"<HttpLibrary {self.name}>"

    def flavour(self, cls: type[_T], base: str) -> type[_T]:
        """``cls`` as a subclass of this library's ``base`` class (made once).

        httpx's (and httpx2's) responses insist that their stream be an instance
        of their own ``AsyncByteStream``, and a transport is told apart by its
        ``AsyncBaseTransport``: one class of ours serves both libraries so.
        """
        made = self._flavours.get((cls, base))
        if made is None:
            bases = (cls, getattr(self.http, base))
            made = type(cls.__name__, bases, {"__module__": cls.__module__, "__slots__": ()})
            made.__qualname__ = cls.__qualname__
            self._flavours[cls, base] = made
        return cast("type[_T]", made)

    def core_error(self, exc: BaseException) -> Exception | None:
        """Return the library's exception for the core library's ``exc``, or None if not its."""
        for source, target in self.equivalents:
            if isinstance(exc, source):
                return target(str(exc))
        return None


HTTPX = HttpLibrary("httpx", httpx, httpcore)
_HTTPX2: HttpLibrary | None = None


def _httpx2() -> HttpLibrary | None:
    """httpx2's record, when httpx2 is imported already (an object of it can exist only then)."""
    global _HTTPX2  # made once, on first need
    if _HTTPX2 is None and "httpx2" in sys.modules:
        import httpcore2  # type: ignore[import-not-found, unused-ignore]  # the extra
        import httpx2  # type: ignore[import-not-found, unused-ignore]

        _HTTPX2 = HttpLibrary("httpx2", httpx2, httpcore2)
    return _HTTPX2


def named(name: str) -> HttpLibrary:
    """The library called ``name`` (``httpx`` or ``httpx2``), imported if need be.

    Raises:
        InvalidRequestError: Another name, or httpx2 without the extra installed.
    """
    if name == "httpx":
        return HTTPX
    if name != "httpx2":
        raise InvalidRequestError(f"library must be 'httpx' or 'httpx2', not {name!r}")
    if "httpx2" not in sys.modules:
        if importlib.util.find_spec("httpx2") is None:
            raise InvalidRequestError(
                "library='httpx2' needs the httpx2 extra: pip install 'hiveon-async[httpx2]'"
            )
        import httpx2  # type: ignore[import-not-found, unused-ignore]  # noqa: F401 (the extra)
    library = _httpx2()
    assert library is not None  # imported just above
    return library


def _owner(value: object, kind: str) -> HttpLibrary | None:
    """The library whose ``kind`` class ``value`` is an instance of, or None."""
    for library in (HTTPX, _httpx2()):
        if library is not None and isinstance(value, getattr(library.http, kind)):
            return library
    return None


def _names(kind: str) -> str:
    return f"an httpx.{kind}" + ("" if _httpx2() is None else f" or an httpx2.{kind}")


def library_of(*, http_client: object, transport: object, timeout: object) -> HttpLibrary:
    """Choose the library a client speaks from the objects the user passed.

    Args:
        http_client: The user's client, or None.
        transport: The user's transport, or None. One that is neither library's
            (a duck-typed transport) counts as httpx's, as it always did.
        timeout: The user's timeout: seconds, a ``Timeout``, or None.

    Returns:
        httpx2's record when any of them is httpx2's, else httpx's.

    Raises:
        InvalidRequestError: ``http_client`` is neither library's ``AsyncClient``,
            or the objects come from both libraries.
    """
    owners: dict[str, HttpLibrary] = {}
    if http_client is not None:
        owner = _owner(http_client, "AsyncClient")
        if owner is None:
            raise InvalidRequestError(f"http_client must be {_names('AsyncClient')}")
        owners["http_client"] = owner
    if transport is not None:
        owners["transport"] = _owner(transport, "AsyncBaseTransport") or HTTPX
    if timeout is not None and not isinstance(timeout, int | float):
        owner = _owner(timeout, "Timeout")
        if owner is not None:
            owners["timeout"] = owner
    chosen = {library.name for library in owners.values()}
    if len(chosen) > 1:
        which = ", ".join(f"{arg} is {library.name}'s" for arg, library in owners.items())
        raise InvalidRequestError(
            f"http_client, transport and timeout must come from one library, httpx or "
            f"httpx2, not both: {which}"
        )
    return next(iter(owners.values()), HTTPX)
