class KDError(RuntimeError):
    """A user-facing error: the message says what is wrong, where, and how to fix it.

    The command line prints it without a stack trace and exits with status 2.
    """
