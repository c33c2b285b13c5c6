"""Silencing what PyBullet's C++ code prints (``argv[0]=`` on every client, V-HACD's usage text, the build-time
banner): the native library writes straight to file descriptors 1 and 2, past Python's ``sys.stdout``, into every
progress bar. The few places that create clients or decompose meshes wrap the call in :func:`silenced`; Python
warnings and logging are unaffected."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def silenced(*fds: int) -> Iterator[None]:
    """Send what is written to the file descriptors ``fds`` (default: 1, native stdout) to the null device while
    the block runs. Python's own buffers are flushed first, so nothing printed before is lost."""
    fds = fds or (1,)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(null, fd)
        yield
    finally:
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)
