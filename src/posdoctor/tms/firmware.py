"""Firmware packages: the package file format, demo builds, registration and reading.

A package is a zip file holding ``manifest.json`` and the application payload ``app.bin``
(format described in docs/tms.md). Registering one (``add_package``) checks the manifest
and the payload checksum, copies the file to ``$POSDOCTOR_HOME/packages/VERSION.pdpkg``,
signs the whole file with the TMS key (Ed25519) and stores a ``FirmwarePackage`` row with
size, sha256 and signature. Terminals download the file, verify sha256 and signature,
then read the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from posdoctor.store import AlreadyExists, InvalidValue, Store
from posdoctor.store.models_tms import FirmwarePackage
from posdoctor.tms.signing import sign_package

FORMAT = 1
MANIFEST_NAME = "manifest.json"
APP_NAME = "app.bin"
PACKAGE_DIR = "packages"
RESETTABLE = ("config", "keys", "batch", "params")
DEFECTS = ("self_check", "sign_in", "crash")
VERSION_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$")


def _invalid(field: str, zh: str, en: str) -> InvalidValue:
    return InvalidValue(field, zh, en)


def check_version(version: str) -> str:
    if not VERSION_PATTERN.match(version or ""):
        raise _invalid("version", f"版本号 {version!r} 无效(字母数字 . _ -,最长32位)",
                       f"version {version!r} is invalid (letters, digits, . _ -, up to 32)")
    return version


def check_resets(resets: Sequence[str]) -> list[str]:
    unknown = [item for item in resets if item not in RESETTABLE]
    if unknown:
        raise _invalid("resets", f"重置项 {','.join(unknown)} 无效(可选 {'/'.join(RESETTABLE)})",
                       f"unknown reset item {','.join(unknown)} (allowed: {'/'.join(RESETTABLE)})")
    return sorted(set(resets), key=RESETTABLE.index)


def demo_payload(version: str, size: int) -> bytes:
    """Deterministic filler standing for an application image (SHAKE-256 of the version)."""
    return hashlib.shake_256(f"posdoctor app {version}".encode()).digest(size)


def build_package(version: str, models: Sequence[str], *, from_versions: Sequence[str] = (),
                  settle_first: bool = False, resets: Sequence[str] = (),
                  defect: str | None = None, requires_model: str | None = None,
                  payload: bytes | None = None, payload_size: int = 64 * 1024) -> bytes:
    """The bytes of a package file (unsigned: the TMS signs it when it is added)."""
    check_version(version)
    if defect is not None and defect not in DEFECTS:
        raise _invalid("defect", f"缺陷类型 {defect} 无效(可选 {'/'.join(DEFECTS)})",
                       f"unknown defect {defect} (allowed: {'/'.join(DEFECTS)})")
    app = demo_payload(version, payload_size) if payload is None else payload
    manifest = {
        "format": FORMAT, "version": version, "models": list(models),
        "from_versions": list(from_versions), "settle_first": settle_first,
        "resets": check_resets(resets),
        "app": {"name": APP_NAME, "size": len(app), "sha256": hashlib.sha256(app).hexdigest()},
        "defect": defect, "requires_model": requires_model,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        # fixed timestamps: the same inputs give the same bytes
        for name, data in ((MANIFEST_NAME, json.dumps(manifest, sort_keys=True, indent=1).encode()),
                           (APP_NAME, app)):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def read_manifest(data: bytes) -> dict[str, Any]:
    """The checked manifest of package bytes; ``InvalidValue`` for anything malformed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read(MANIFEST_NAME))
            app = archive.read(manifest["app"]["name"])
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError) as exc:
        raise _invalid("package", f"不是有效的固件包: {exc}", f"not a valid package file: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _invalid("package", "固件包格式版本不支持", "unsupported package format")
    if hashlib.sha256(app).hexdigest() != manifest["app"].get("sha256"):
        raise _invalid("package", "固件包内应用校验值不符", "application checksum in the package does not match")
    check_version(str(manifest.get("version", "")))
    return manifest


def package_path(home: str | Path, version: str) -> Path:
    return Path(home).expanduser() / PACKAGE_DIR / f"{check_version(version)}.pdpkg"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def add_package(store: Store, home: str | Path, data: bytes, *, version: str,
                models: Sequence[str] | None = None, from_versions: Sequence[str] | None = None,
                settle_first: bool | None = None, resets: Sequence[str] | None = None
                ) -> FirmwarePackage:
    """Register package bytes as ``version``; arguments left None come from the manifest."""
    manifest = read_manifest(data)
    if manifest["version"] != version:
        raise _invalid("version", f"固件包清单版本为 {manifest['version']},与 {version} 不符",
                       f"the package manifest says version {manifest['version']}, not {version}")
    chosen_models = [m for m in (models if models is not None else manifest.get("models", [])) if m]
    if not chosen_models:
        raise _invalid("models", "至少需要一个适用机型", "at least one model is required")
    if store.find_package(version) is not None:
        raise AlreadyExists("package", version)
    path = package_path(home, version)
    _write_atomically(path, data)
    row = FirmwarePackage(
        version=version, models=chosen_models,
        from_versions=list(from_versions if from_versions is not None else manifest.get("from_versions", [])),
        size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        signature=sign_package(data, home=home).hex(),
        settle_first=bool(manifest.get("settle_first") if settle_first is None else settle_first),
        resets=check_resets(resets if resets is not None else manifest.get("resets", [])),
        manifest=manifest, filename=path.name)
    return store.add_package(row)


def read_package_bytes(home: str | Path, package: FirmwarePackage, start: int = 0,
                       end: int | None = None) -> bytes:
    """Bytes ``start``..``end`` (inclusive) of a stored package file."""
    path = Path(home).expanduser() / PACKAGE_DIR / package.filename
    last = package.size - 1 if end is None else min(end, package.size - 1)
    with path.open("rb") as handle:
        handle.seek(start)
        return handle.read(max(0, last - start + 1))


def package_info(package: FirmwarePackage, url: str | None = None) -> dict[str, Any]:
    """The ``package`` object of an upgrade offer."""
    return {"version": package.version, "size": package.size, "sha256": package.sha256,
            "signature": package.signature, "settle_first": package.settle_first,
            "resets": list(package.resets), "models": list(package.models),
            "url": url or f"/api/v1/packages/{package.version}"}
