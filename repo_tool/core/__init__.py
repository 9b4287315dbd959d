"""The pure core: manifest, waves, readiness, selection, versions and instants.

No module in this package reads files, the network or the clock; callers pass
bytes and the current instant in.
"""
