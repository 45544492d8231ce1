"""A quiet terminal: kclr's lines and TensorFlow's real errors, not its start-up log.

TensorFlow's C++ libraries log through absl before absl's logging is initialised
("WARNING: All log messages before absl::InitializeLog() is called are written to
STDERR", then `I0000 ... port.cc] oneDNN custom operations are on`, `cudart_stub.cc ...
Could not find cuda drivers`, `E0000 ... cuda_platform.cc] failed call to cuInit`).
Those lines ignore `TF_CPP_MIN_LOG_LEVEL`, and each TensorFlow library that is loaded
repeats them. So `kclr` (without `-v`) sets `TF_CPP_MIN_LOG_LEVEL=2` before TensorFlow is
imported and passes the process's standard error (file descriptor 2, which C++ writes
to directly) through a filter that drops absl's info and warning lines and the errors
that only say there is no GPU; every other line, TensorFlow's real errors included,
goes through unchanged. `kclr -v COMMAND` leaves TensorFlow's log as it is.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

__all__ = ["is_noise", "quiet_tensorflow"]

_ABSL_PREINIT = "WARNING: All log messages before absl::InitializeLog()"
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]*\] ")
_NO_GPU = re.compile(
    r"cuInit|cuda drivers|CUDA error|Unable to register cu(DNN|FFT|BLAS)|cuda_(platform|executor)"
)


def is_noise(line: str) -> bool:
    """Whether a line of standard error is TensorFlow's log rather than a real error."""
    if line.startswith(_ABSL_PREINIT):
        return True
    match = _ABSL_LINE.match(line)
    if match is None:
        return False
    return match.group(1) in "IW" or (match.group(1) == "E" and bool(_NO_GPU.search(line)))


def quiet_tensorflow() -> None:
    """Quiets TensorFlow's log for the rest of this process (call before importing it).

    Only where standard error is the process's own (not under a test runner that
    replaced `sys.stderr`): then the filter sits on file descriptor 2.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if sys.stderr is not sys.__stderr__ or sys.__stderr__ is None:
        return
    try:
        sys.__stderr__.flush()
        original = os.dup(2)
    except (OSError, ValueError):
        return
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def pump() -> None:
        with os.fdopen(read, "rb") as pipe:
            for line in pipe:
                if not is_noise(line.decode("utf-8", "replace")):
                    os.write(original, line)

    thread = threading.Thread(target=pump, name="kclr-stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)  # the pipe's last writer in this process closes: the pump ends
        thread.join(timeout=2.0)

    atexit.register(restore)
