"""The pure core: manifest, waves, readiness, selection, versions and instants.

No module in this package reads files, the network or the clock; callers pass bytes and the
current instant in.  It imports nothing of the package but ``errors`` (an import contract).

* ``manifest`` — ``manifest.json``: model, strict codec, edits; ``release`` — ``Release.toml``;
* ``waves`` — wave policies to ``waves`` maps; ``readiness`` — when a seed is offered an update;
  ``schedule`` — seed ranges and fleet curves for people; ``rollout`` — pause, resume, halt;
* ``selection`` — which update a node picks and which migrations it runs; ``chain`` — the
  migration chain as an invariant of every manifest edit; ``versionspec`` — ``--versions`` (which
  upstream releases a mirror or re-root takes, and the targets and steps they need);
* ``checked`` — a download stream checked for length and SHA-256 as it passes;
* ``semver``, ``instant`` — strict versions, nanosecond instants and offsets;
* ``gptprio`` — A/B partition-set priority flags; ``nodeconfig`` — updog.toml and os-release;
* ``lz4frames`` — the one rule for decoding an image's LZ4 frames;
* ``toml``, ``yamlfile`` — configuration text readers.
"""
