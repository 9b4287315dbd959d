"""Auditing: verify a live repository end to end, diff two snapshots, report expirations.

Read-only: it never imports publish or signing.
"""
