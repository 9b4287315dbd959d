"""The node: updog's update flow on a real GPT disk, and the standard TUF client (``tuf-client``).

* ``updog`` — updog's commands: check, download and stage, flip the partition set, the cache;
* ``staging`` — a verified image streamed through LZ4 into a partition with bounded memory;
* ``gpt`` — the OS disk: read and write its table, change gptprio flags, make a disk image;
* ``gpttable`` — the table's on-disk format, pure;
* ``tuf_client`` — the tuf-conformance client protocol over the standard-TUF policy.

It never imports publish, audit, signing or boto3 (import contracts in ``pyproject.toml``).
"""
