"""Publishing: edit a variant/arch repository, sign it and write it in the safe order (SPEC §10).
"""
