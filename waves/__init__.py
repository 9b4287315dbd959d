"""Bottlerocket's shipped wave policies, installed as the package ``repo_tool.policies``.

The TOML files here are byte-identical to bottlerocket-core-kit's
``sources/updater/waves/`` (a test checks this); ``--wave-policy NAME`` finds
them by name (``default``, ``accelerated``, ``slow-roll``, ``ohno``).
"""
