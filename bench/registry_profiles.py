"""Cost of the host's registry profiles and change feed (issue 3 registry work).

    python bench/registry_profiles.py --terminals 10000 --json

Measures on a temporary SQLite database: loading every terminal's TMS profile (what a
host start or full reload adds), the per-message lookups CheckStatus does (stale params,
allowed types, MCC policy), one change-feed poll with nothing new (every 0.5 s), and a
one-terminal reload (what each invalidation costs on the terminal's next message).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import timeit

from posdoctor.host.profiles import Profiles
from posdoctor.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home = tempfile.mkdtemp()
    store = open_store(f"sqlite:///{home}/bench.db", home=home)
    mids = [f"8981000000{m:05d}" for m in range(100)]
    for mid in mids:
        store.add_merchant(mid, "bench", mcc="5411")
    with store._write() as session:  # bulk: the per-row facade would dominate the set-up time
        from posdoctor.store.models import Device, Terminal

        session.add_all(Device(serial=f"SN{t}") for t in range(args.terminals))
        session.flush()
        session.add_all(Terminal(tid=f"{t:08d}", mid=mids[t % 100], serial=f"SN{t}") for t in range(args.terminals))
    store.set_param("12", "30")
    store.set_param("18", "1", mid=mids[1])
    store.set_policy("mcc.5411", ["sale", "void"])
    profiles = Profiles(store)
    profiles.load_all()  # warm the statement cache
    load_ms = min(timeit.repeat(profiles.load_all, number=1, repeat=3)) * 1000
    tid, mid = "00000005", mids[5]
    lookup_us = timeit.timeit(lambda: (profiles.params_stale(tid, mid), profiles.terminal(tid),
                                       profiles.policies.kinds_for_mcc(profiles.merchant(mid).mcc)),
                              number=100_000) / 100_000 * 1e6
    last = store.last_host_change_id()
    poll_ms = timeit.timeit(lambda: store.host_changes_after(last), number=200) / 200 * 1000
    reload_ms = min(timeit.repeat(lambda: profiles.reload_terminal(tid), number=1, repeat=20)) * 1000
    result = {"terminals": args.terminals, "load_all_ms": round(load_ms, 1),
              "per_message_lookup_us": round(lookup_us, 2), "feed_poll_ms": round(poll_ms, 2),
              "reload_one_terminal_ms": round(reload_ms, 2)}
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    store.close()


if __name__ == "__main__":
    main()
