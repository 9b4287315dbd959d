"""Mirroring: copy a verified upstream repository (metadata byte for byte, the targets it needs) to
storage of one's own, incrementally and in the safe order (one or many variant/arch repositories); and
download verified targets to a folder.  Re-rooting is a publish (:mod:`repo_tool.publish.reroot`).

A job over the layers below (trust, storage, core); it never imports the publisher, the auditor or the
node, nor the command line.
"""
