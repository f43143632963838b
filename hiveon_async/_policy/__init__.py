"""When to send: the retry decision and budget, the rate gate, adaptive pacing, the slots.

Nothing here does I/O or knows how a request travels: the engine
(:mod:`hiveon_async._engine`) asks these objects whether and when to send, and
the transports (:mod:`hiveon_async._transport`) do the sending.
"""
