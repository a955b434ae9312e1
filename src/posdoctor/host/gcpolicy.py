"""Garbage-collector settings for the long-running host processes.

CPython's cycle collector runs a young-generation pass every 700 net container
allocations and, every so often, a full pass over every tracked object. A host that
has loaded a registry of 50,000 terminals holds a few hundred thousand long-lived
objects, and each message allocates dozens of short-lived ones, so by default the
collector keeps re-walking a registry that never becomes garbage. Measured in the
sign-in storm's event loop (docs/performance.md, "Third round"): about 150 µs of CPU
per sign-in went to collections, most of it in full passes of ~190 ms each.

`settle_long_lived` is called once a process has loaded what it keeps (the registry,
the database engine, the modules): what exists then is frozen (never scanned again;
refcounting still frees it) and young collections run every `YOUNG_THRESHOLD`
allocations instead of 700. Cyclic garbage is still collected, only in larger batches.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def settle_long_lived() -> None:
    """Collect once, freeze what survives, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
