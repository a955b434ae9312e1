"""Package signing (RFC 8032 known answer), key file handling, package format and registration."""

import hashlib
import io
import json
import os
import zipfile

import pytest

from posdoctor.store import AlreadyExists, ConfigError, InvalidValue
from posdoctor.tms.firmware import (
    add_package,
    build_package,
    package_info,
    package_path,
    read_manifest,
    read_package_bytes,
)
from posdoctor.tms.signing import (
    KEY_NAME,
    load_signing_key,
    private_key_from_seed,
    public_key_bytes,
    public_key_hex,
    sign_package,
    verify_package,
)

# RFC 8032 section 7.1, TEST 1 (empty message)
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


def test_rfc8032_test_vector_1_through_our_functions():
    key = private_key_from_seed(RFC_SEED)
    assert public_key_bytes(key) == RFC_PUBLIC
    assert sign_package(b"", key=key) == RFC_SIGNATURE
    assert verify_package(RFC_PUBLIC, b"", RFC_SIGNATURE)
    assert verify_package(RFC_PUBLIC.hex(), b"", RFC_SIGNATURE.hex())
    assert not verify_package(RFC_PUBLIC, b"x", RFC_SIGNATURE)
    tampered = bytes([RFC_SIGNATURE[0] ^ 1]) + RFC_SIGNATURE[1:]
    assert not verify_package(RFC_PUBLIC, b"", tampered)
    assert not verify_package(RFC_PUBLIC, b"", "not hex")


def test_signing_key_file_is_created_private_and_stable(tmp_path):
    home = tmp_path / "home"
    first = public_key_hex(home)
    path = home / KEY_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    assert public_key_hex(home) == first
    data = b"package bytes"
    assert verify_package(first, data, sign_package(data, home=home))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_signing_key_readable_by_others_is_refused(tmp_path, mode):
    load_signing_key(tmp_path)
    os.chmod(tmp_path / KEY_NAME, mode)
    with pytest.raises(ConfigError) as refused:
        load_signing_key(tmp_path)
    assert "chmod 600" in refused.value.en and "权限" in refused.value.zh


def test_garbled_signing_key_is_refused(tmp_path):
    path = tmp_path / KEY_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"zz\n")
    os.close(fd)
    with pytest.raises(ConfigError, match="invalid"):
        load_signing_key(tmp_path)


def test_build_package_is_deterministic_and_readable():
    data = build_package("2.1.0", ["P1", "P2"], from_versions=["2.0.0"], settle_first=True,
                         resets=["keys", "config"], defect="sign_in", requires_model="P2",
                         payload_size=1000)
    assert data == build_package("2.1.0", ["P1", "P2"], from_versions=["2.0.0"], settle_first=True,
                                 resets=["keys", "config"], defect="sign_in", requires_model="P2",
                                 payload_size=1000)
    manifest = read_manifest(data)
    assert manifest["version"] == "2.1.0" and manifest["models"] == ["P1", "P2"]
    assert manifest["from_versions"] == ["2.0.0"] and manifest["settle_first"] is True
    assert manifest["resets"] == ["config", "keys"]
    assert (manifest["defect"], manifest["requires_model"]) == ("sign_in", "P2")
    assert manifest["app"]["size"] == 1000


def _rewrite(data: bytes, change) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return out.getvalue()


def test_malformed_packages_are_refused_with_the_reason():
    good = build_package("2.0.0", ["P1"], payload_size=100)
    with pytest.raises(InvalidValue, match="not a valid package"):
        read_manifest(b"not a zip")
    with pytest.raises(InvalidValue, match="checksum"):
        read_manifest(_rewrite(good, lambda m: m.update({"app.bin": b"tampered"})))

    def old_format(members):
        manifest = json.loads(members["manifest.json"])
        manifest["format"] = 99
        members["manifest.json"] = json.dumps(manifest).encode()

    with pytest.raises(InvalidValue, match="unsupported"):
        read_manifest(_rewrite(good, old_format))
    with pytest.raises(InvalidValue, match="defect"):
        build_package("2.0.0", ["P1"], defect="melts")
    with pytest.raises(InvalidValue, match="reset"):
        build_package("2.0.0", ["P1"], resets=["firmware"])
    with pytest.raises(InvalidValue, match="version"):
        build_package("../evil", ["P1"])


def test_add_package_stores_file_row_and_signature(store, home):
    data = build_package("2.0.0", ["P1"], payload_size=5000)
    row = add_package(store, home, data, version="2.0.0", models=["P1", "P2"], resets=["params"],
                      settle_first=True)
    assert package_path(home, "2.0.0").read_bytes() == data
    stored = store.get_package("2.0.0")
    assert stored.sha256 == hashlib.sha256(data).hexdigest() == row.sha256
    assert (stored.size, stored.models, stored.resets, stored.settle_first) == (len(data), ["P1", "P2"], ["params"], True)
    assert verify_package(public_key_hex(home), data, stored.signature)
    assert read_package_bytes(home, stored, 10, 19) == data[10:20]
    assert read_package_bytes(home, stored) == data
    info = package_info(stored)
    assert info["url"] == "/api/v1/packages/2.0.0" and info["signature"] == stored.signature
    assert [p.version for p in store.list_packages()] == ["2.0.0"]


def test_add_package_refusals_lose_nothing(store, home):
    data = build_package("2.0.0", ["P1"], payload_size=100)
    with pytest.raises(InvalidValue, match="manifest says version 2.0.0"):
        add_package(store, home, data, version="2.0.1")
    with pytest.raises(InvalidValue, match="model"):
        add_package(store, home, data, version="2.0.0", models=[])
    add_package(store, home, data, version="2.0.0")
    with pytest.raises(AlreadyExists):
        add_package(store, home, build_package("2.0.0", ["P9"], payload_size=7), version="2.0.0")
    assert package_path(home, "2.0.0").read_bytes() == data
    assert store.get_package("2.0.0").models == ["P1"]
