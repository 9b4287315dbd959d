"""Signing: private keys, signer sources (key files, environment, AWS KMS, PKCS#11 tokens) and the root-file
lifecycle.  The only home of securesystemslib and of private-key code; nodes never import it.

* ``keyfiles`` — private keys on disk (0600), generated, encrypted, read;
* ``signers`` — key sources resolved to securesystemslib signers (``role_signers``);
* ``kms`` — how a user names a KMS key, and whether it can sign what tough verifies;
* ``hsm`` — keys on a PKCS#11 token (``hsm:`` sources) through securesystemslib's HSMSigner;
* ``sign`` — sign a role file with the keys a root lists for it, check the threshold;
* ``rootfile`` — the root role's lifecycle (``tuftool root``); ``rootops`` — root and key files on disk.
"""
