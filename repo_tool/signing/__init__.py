"""Signing: private keys, signer sources (key files, environment, AWS KMS) and the root-file
lifecycle.  The only home of securesystemslib and of private-key code; nodes never import it.
"""
