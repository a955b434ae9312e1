"""The host processes' collector settings (run in a child: they change the whole process)."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc, weakref
from posdoctor.host.gcpolicy import YOUNG_THRESHOLD, settle_long_lived

class Node:
    pass

kept = Node()
kept.me = kept  # loaded before settling: frozen, never scanned again
settle_long_lived()
print(gc.get_freeze_count() > 0, gc.get_threshold()[0] == YOUNG_THRESHOLD)
garbage = Node()
garbage.me = garbage
gone = weakref.ref(garbage)
del garbage
gc.collect()
print(gone() is None, not any(o is kept for o in gc.get_objects()))
"""


def test_settle_freezes_what_exists_and_still_collects_new_cycles() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["True", "True", "True", "True"]
