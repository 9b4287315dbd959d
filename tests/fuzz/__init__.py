"""Fuzzing (hypothesis): every hostile input gets a clear error or a correct result, never a traceback."""
