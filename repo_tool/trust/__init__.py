"""What a node trusts: TUF metadata as tough (updog) and a standard TUF client read it (SPEC §3).

Nothing here reads files, the network or the clock, and nothing here imports storage, signing,
boto3 or securesystemslib (import contracts in ``pyproject.toml``, checked by ``.ci/run``).
"""
