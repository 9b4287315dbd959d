"""Run moto as a real HTTP server (S3, KMS, ...) on 127.0.0.1, with KMS signing fixed.

Usage: ``python tests/moto_launcher.py --port PORT [--port-file FILE] [--unpatched]``

Why the patch: moto 5.2.5's KMS ``Sign`` ignores ``MessageType=DIGEST``: it hashes the given
digest again and signs ``H(H(payload))``. securesystemslib's ``AWSSigner`` (like tough's KMS
signer) hashes locally and sends only the digest, so every signature moto makes for it fails to
verify against the public key (moto's own ``Verify`` makes the same mistake, which hides the bug).
moto's RSASSA-PSS also uses the maximum salt length, whereas real AWS KMS uses a salt as long as
the digest (32 bytes for SHA-256) and tough rejects any other salt length.

So, in this (server) process only, before the server starts, we replace the ``sign``/``verify``
methods of ``moto.kms.utils.RSAPrivateKey`` and ``ECDSAPrivateKey`` with versions that
- sign/verify the message as a prehashed digest when the request's ``MessageType`` is ``DIGEST``
  (which must then be exactly as long as the algorithm's digest, as AWS enforces), and
- use a digest-length salt for RSASSA_PSS_* (RAW and DIGEST alike).
The request's ``MessageType`` reaches them through a context variable set by thin wrappers around
``moto.kms.responses.KmsResponse.sign``/``verify``; everything else (key lookup, key usage and
algorithm validation, response shape) is moto's own code.

``--unpatched`` runs stock moto; it exists so a test can prove the patch is necessary.
When ``--port 0`` is given the OS picks the port; ``--port-file`` receives the bound port
(written atomically once the server accepts connections).
"""

from __future__ import annotations

import argparse
import contextvars
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
from moto.kms import responses as kms_responses
from moto.kms import utils as kms_utils
from moto.kms.exceptions import ValidationException
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

_MESSAGE_TYPE: contextvars.ContextVar[str] = contextvars.ContextVar("kms_message_type", default="RAW")

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def _hash_for(signing_algorithm: str) -> hashes.HashAlgorithm:
    """SHA-256/384/512 from the algorithm name's suffix (RSASSA_PSS_SHA_256, ECDSA_SHA_384, ...)."""
    return _HASHES[signing_algorithm.rsplit("_", 1)[-1]]()


def _prepared(message: bytes, signing_algorithm: str) -> tuple[bytes, hashes.HashAlgorithm | utils.Prehashed]:
    """The message and the hash argument for cryptography: the digest itself, prehashed, for DIGEST."""
    algorithm = _hash_for(signing_algorithm)
    if _MESSAGE_TYPE.get() != "DIGEST":
        return message, algorithm
    if len(message) != algorithm.digest_size:
        raise ValidationException(
            f"Digest is invalid length for algorithm {signing_algorithm}: "
            f"{len(message)} bytes, expected {algorithm.digest_size}."
        )
    return message, utils.Prehashed(algorithm)


def _rsa_padding(signing_algorithm: str) -> padding.AsymmetricPadding:
    if signing_algorithm.startswith("RSASSA_PSS_"):
        algorithm = _hash_for(signing_algorithm)
        return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
    return padding.PKCS1v15()


def _rsa_sign(self: kms_utils.RSAPrivateKey, message: bytes, signing_algorithm: str) -> bytes:
    kms_utils.validate_signing_algorithm(signing_algorithm, kms_utils.SigningAlgorithm.rsa_signing_algorithms())
    data, algorithm = _prepared(message, signing_algorithm)
    return self.private_key.sign(data, _rsa_padding(signing_algorithm), algorithm)


def _rsa_verify(self: kms_utils.RSAPrivateKey, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
    kms_utils.validate_signing_algorithm(signing_algorithm, kms_utils.SigningAlgorithm.rsa_signing_algorithms())
    data, algorithm = _prepared(message, signing_algorithm)
    try:
        self.private_key.public_key().verify(signature, data, _rsa_padding(signing_algorithm), algorithm)
    except InvalidSignature:
        return False
    return True


def _ecdsa_sign(self: kms_utils.ECDSAPrivateKey, message: bytes, signing_algorithm: str) -> bytes:
    kms_utils.validate_signing_algorithm(signing_algorithm, self.valid_signing_algorithms)
    data, algorithm = _prepared(message, signing_algorithm)
    return self.private_key.sign(data, ec.ECDSA(algorithm))  # DER-encoded (r, s)


def _ecdsa_verify(self: kms_utils.ECDSAPrivateKey, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
    kms_utils.validate_signing_algorithm(signing_algorithm, self.valid_signing_algorithms)
    data, algorithm = _prepared(message, signing_algorithm)
    try:
        self.private_key.public_key().verify(signature, data, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


def _with_message_type(
    handler: Callable[[kms_responses.KmsResponse], str],
) -> Callable[[kms_responses.KmsResponse], str]:
    """Wrap a KmsResponse handler so the key methods above see the request's MessageType."""

    def wrapped(self: kms_responses.KmsResponse) -> str:
        token = _MESSAGE_TYPE.set(self._get_param("MessageType") or "RAW")
        try:
            return handler(self)
        finally:
            _MESSAGE_TYPE.reset(token)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def patch_moto_kms() -> None:
    """Make moto's KMS Sign/Verify honor MessageType=DIGEST and use AWS's PSS salt length."""
    patches: list[tuple[Any, str, Any]] = [
        (kms_utils.RSAPrivateKey, "sign", _rsa_sign),
        (kms_utils.RSAPrivateKey, "verify", _rsa_verify),
        (kms_utils.ECDSAPrivateKey, "sign", _ecdsa_sign),
        (kms_utils.ECDSAPrivateKey, "verify", _ecdsa_verify),
        (kms_responses.KmsResponse, "sign", _with_message_type(kms_responses.KmsResponse.sign)),
        (kms_responses.KmsResponse, "verify", _with_message_type(kms_responses.KmsResponse.verify)),
    ]
    for owner, name, replacement in patches:
        setattr(owner, name, replacement)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0 lets the OS pick one (see --port-file)")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    parser.add_argument("--unpatched", action="store_true", help="stock moto KMS signing (to demonstrate its bug)")
    args = parser.parse_args(argv)

    if not args.unpatched:
        patch_moto_kms()

    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"moto {'UNPATCHED' if args.unpatched else 'patched'} serving on http://{host}:{port}", flush=True)
    if args.port_file is not None:
        tmp = args.port_file.with_name(args.port_file.name + ".tmp")
        tmp.write_text(str(port))
        os.replace(tmp, args.port_file)
    while not stopping:
        time.sleep(0.1)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
