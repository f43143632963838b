"""How to send: one small interface, one module per implementation, one factory.

- :mod:`._base`: the interface (:class:`Transport`), the prepared request and the answer;
- :mod:`._body`: reading a body within the size cap (every transport uses it);
- :mod:`._timer`: the wall-clock bound on each attempt;
- :mod:`._httpx`: through httpx's interface (your client, an httpx transport, a proxy's);
- :mod:`._httpcore`: the lean pool of httpcore connections, with its exception mapping;
- :mod:`._aiohttp`: aiohttp's pool (the ``speedups`` extra), with its exception mapping;
- :mod:`._factory`: which of them a client uses, speaking the client's HTTP
  library (httpx or httpx2, :mod:`hiveon_async._http_library`).

Nothing here knows of retries, rate limits or batches.
"""

from ._base import Answer, AttemptTimeout, StopRequest, Transport
from ._factory import TransportFactory

__all__ = ["Answer", "AttemptTimeout", "StopRequest", "Transport", "TransportFactory"]
