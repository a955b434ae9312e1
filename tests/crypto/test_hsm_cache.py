"""The SoftHSM's key cache: bounded, oldest out first, evicted keys reload from blobs."""

from __future__ import annotations

import os

from posdoctor.crypto.hsm import SoftHSM


def test_cache_is_bounded_and_evicted_keys_still_work() -> None:
    hsm = SoftHSM(os.urandom(16), cache_limit=3)
    keys = [hsm.generate_key() for _ in range(5)]
    assert "cached_keys=3" in repr(hsm)
    data = bytes(8)
    for key in keys:  # the first two were evicted: they come back from their blobs
        assert hsm.key_check_value(key) == key.kcv
        assert hsm.export_under(key, keys[-1]) == hsm.export_under(key, keys[-1])
    assert "cached_keys=3" in repr(hsm)
    assert hsm.generate_mac(keys[0], data) == hsm.generate_mac(keys[0], data)


def test_many_evictions_stay_cheap() -> None:
    hsm = SoftHSM(os.urandom(16), cache_limit=100)
    keys = [hsm.generate_key() for _ in range(3000)]
    assert all(hsm.key_check_value(k) == k.kcv for k in keys[:50])
    assert "cached_keys=100" in repr(hsm)
