"""repo-tool: Bottlerocket TUF update repositories, from publishing to the node."""

__version__ = "0.1.0"
