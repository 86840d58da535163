"""Reading trusted roots from disk: the system store and an operator's extra bundle."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from tracking.core.certificates import load_pem_bundle


def system_store_files() -> list[Path]:
    paths = ssl.get_default_verify_paths()
    files = [Path(p) for p in (paths.cafile, paths.openssl_cafile) if p and Path(p).is_file()]
    if files:
        return files[:1]
    capath = next(
        (Path(p) for p in (paths.capath, paths.openssl_capath) if p and Path(p).is_dir()), None
    )
    return sorted(capath.glob("*.pem")) if capath else []


def load_trust_roots(extra_bundle: Path | None) -> list[x509.Certificate]:
    roots: list[x509.Certificate] = []
    for path in system_store_files():
        roots.extend(load_pem_bundle(path.read_bytes()))
    if extra_bundle is not None:
        roots.extend(load_pem_bundle(extra_bundle.read_bytes()))
    return roots
