"""Route what native (C++) code writes straight to file descriptor 2 into a Python logger.

LiteRT, its converter and TensorFlow's port layer print INFO/"ERROR:" chatter to fd 2 that
Python's logging cannot filter (e.g. "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.").
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_to_log(logger: logging.Logger, prefix: str, level: int = logging.DEBUG) -> Iterator[None]:
    """While inside, fd 2 goes to a temp file; afterwards each line is logged at ``level``.

    Process-wide (it swaps fd 2): keep it around short, single-threaded sections.
    """
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                if line.strip():
                    logger.log(level, "%s: %s", prefix, line)
