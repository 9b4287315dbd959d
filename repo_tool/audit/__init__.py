"""Auditing: verify a live repository end to end, diff two snapshots, report expirations.

* ``run`` — ``audit()``: the checks in order; ``options`` — what one audit is asked;
* ``findings`` — the findings model and its JSON form; ``report`` — the text, Markdown and HTML forms;
* ``roleset`` — the role files judged, and whether a node's load verified them;
* ``stored`` — what the audit reads itself: the root chain from 1 up, role files as stored;
* ``role_checks``, ``manifest_checks``, ``target_checks`` — the checks, by what they look at;
* ``expiry`` — expired / expiring soon / ok, one rule for ``audit`` and ``check-expirations``;
* ``diff``, ``diff_load``, ``diff_text`` — ``audit-diff``: the pure diff, its loads, its text;
* ``expirations`` — ``check-expirations`` over every variant/arch repository.

Every TUF rule it applies is the trust layer's (signatures, the root walk, tough's re-serialization).
Read-only: it never imports publish or signing (import contracts in ``pyproject.toml``).
"""
