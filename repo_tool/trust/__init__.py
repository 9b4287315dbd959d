"""What a node trusts: TUF metadata as tough (updog) and a standard TUF client read it (SPEC §3).

* ``tufjson`` — strict JSON reading and canonical writing;
* ``keys`` — public key entries, key IDs, signature checks as tough makes them;
* ``signatures`` — one ``VerificationResult`` (threshold, signed, unsigned) from one function;
* ``model`` — the typed, frozen model (``RoleFile``, ``Root``, ``MetaFile``, ``TargetFile``;
  ``delegations``: ``Delegations``), parsed once from the bytes received; limits, regexes, errors;
* ``metadata`` — verify a role file against its root, build new ``signed`` objects;
* ``rules`` — the SPEC §3.2 write checklist and the walk for what tough would not read back;
* ``lines`` — one pattern checked over many names or digests at once (10,000 targets);
* ``policy`` — the tough and standard-TUF behaviours as two policy objects (``TOUGH``, ``TUF``);
* ``trusted`` — the trusted set: each verification step, pure, and the one root-chain walk;
* ``lookup`` — the verified ``Repo`` and target lookup through delegations;
* ``loader`` — the load's shell (``open_repo``): fetch from a ``Source``, keep in ``Store`` s;
* ``verifier`` — the public face (re-exports) and the fetch of a small target.

Nothing here reads files (but ``verifier.stored_copy``'s one), the network (but through the
``Source`` it is given) or the clock, and nothing here imports storage, signing, boto3 or
securesystemslib (import contracts in ``pyproject.toml``, checked by ``.ci/run``).
"""
