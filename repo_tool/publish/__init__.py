"""Publishing: edit a variant/arch repository, sign it and write it in the safe order (SPEC §10).

:mod:`.load` (where a repository lives, its verified load), :mod:`.editor` (target list, signed
plan, ordered write), :mod:`.live` (the ``live_edit`` block every operation is, and its plan or
write), :mod:`.release` (publish, publish-release), :mod:`.reroot` (``mirror --resign``: upstream's verified
releases on the operator's keys and waves), :mod:`.maintenance` (refresh, rollout, pulls),
:mod:`.infra` (buckets and KMS keys), :mod:`.quickstart`.
"""
