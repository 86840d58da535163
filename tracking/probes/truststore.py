"""Reading trusted roots from disk: the system store and an operator's extra bundle.

The extra bundle (``DSTRACK_CA_BUNDLE``) adds to the system store, never replaces it. One broken
certificate in either is skipped, not fatal. A bundle that cannot be read, or holds no
certificate, is logged as a warning when the roots are first loaded, and the system store is
used alone: certificates the bundle was meant to vouch for then show as untrusted (and say so),
while every other verdict stays right.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from cryptography import x509

from tracking.core.certificates import load_pem_bundle

log = logging.getLogger(__name__)


def system_store_files() -> list[Path]:
    """The system's CA file (``SSL_CERT_FILE`` first, as OpenSSL reads it), else the PEM files
    of its CA directory."""
    paths = ssl.get_default_verify_paths()
    files = [Path(p) for p in (paths.cafile, paths.openssl_cafile) if p and Path(p).is_file()]
    if files:
        return files[:1]
    capath = next(
        (Path(p) for p in (paths.capath, paths.openssl_capath) if p and Path(p).is_dir()), None
    )
    return sorted(capath.glob("*.pem")) if capath else []


def load_trust_roots(extra_bundle: Path | None) -> list[x509.Certificate]:
    """The system store's roots, then those of ``extra_bundle`` if given."""
    roots: list[x509.Certificate] = []
    for path in system_store_files():
        roots.extend(_read(path, "system trust store file") or ())
    if not roots:
        log.warning("no system trust store found: only DSTRACK_CA_BUNDLE's roots are trusted")
    if extra_bundle is not None:
        extra = _read(extra_bundle, "DSTRACK_CA_BUNDLE")
        if extra == []:
            log.warning("DSTRACK_CA_BUNDLE %s holds no PEM certificate: ignored", extra_bundle)
        roots.extend(extra or ())
    return roots


def _read(path: Path, what: str) -> list[x509.Certificate] | None:
    """The certificates of a PEM file, None (and a warning) when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("%s %s cannot be read (%s): ignored", what, path, exc.strerror or exc)
        return None
    return load_pem_bundle(data)
