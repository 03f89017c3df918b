"""The one exception type for mistakes a user can make (bad path, bad config, bad image)."""


class ZSSRError(Exception):
    """A user-facing error: the message names the input and the fix; no traceback is shown."""
