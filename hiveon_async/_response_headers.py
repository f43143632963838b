"""A response's headers as results and errors keep them: decoded only when read.

A leaf, below the errors and the models that hold it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

__all__ = ["ResponseHeaders"]


class ResponseHeaders(Mapping[str, str]):
    """A response's headers, read-only: names lower-cased, repeats joined with ``", "``.

    Decoded (as Latin-1, what HTTP allows) only when first read: most results'
    headers never are. What it is given is already free of credentials.
    """

    __slots__ = ("_decoded", "_raw")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._raw = raw
        self._decoded: dict[str, str] | None = None

    def _headers(self) -> dict[str, str]:
        decoded = self._decoded
        if decoded is None:
            decoded = self._decoded = {}
            for name, value in self._raw:
                key = name.decode("latin-1").lower()
                text = value.decode("latin-1")
                decoded[key] = f"{decoded[key]}, {text}" if key in decoded else text
            self._raw = ()
        return decoded

    def __getitem__(self, name: str) -> str:
        return self._headers()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers())

    def __len__(self) -> int:
        return len(self._headers())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._headers()!r})"
