"""Fault injection for publishing: a real SIGKILL at every storage write step (local and S3),
a full disk and a file-size limit during a local write, and S3 throttling (SlowDown)."""
