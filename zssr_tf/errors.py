"""The exception type for mistakes a user can make (bad path, bad config, bad image), the
warning type for settings that are valid but unlikely to work, and the interrupt a SIGTERM
raises (`Terminated`, `raise_terminated`)."""

import signal


class ZSSRError(Exception):
    """A user-facing error: the message names the input and the fix; no traceback is shown."""


class ZSSRWarning(UserWarning):
    """A user-facing warning: a setting or input that is valid but likely not what was meant.
    The command line prints it as one `zssr: warning: ...` line."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (`timeout`, a batch scheduler, a cancelled CI job): raised by the command
    line's handler so that a run ends the way Ctrl-C ends it (MLflow run KILLED, outputs kept).
    A KeyboardInterrupt, so every `except KeyboardInterrupt` treats both alike."""


def raise_terminated(signum, frame) -> None:
    """A SIGTERM handler (`signal.signal(signal.SIGTERM, raise_terminated)`): raises Terminated,
    once. Later SIGTERMs are ignored, so that a second one (a scheduler repeating it, a process
    group's signal after the parent's) cannot cut short the cleanup that ends the MLflow run
    KILLED; SIGKILL still stops the process."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


class KernelEstimationError(ZSSRError):
    """A kernel estimate is unusable (NaN, a sum far from 1, no positive taps); the message names
    the bicubic fallback."""
