"""The user-facing error and the listings its messages use."""
MAX_LISTED = 10


class KDError(RuntimeError):
    """A user-facing error: the message says what is wrong, where, and how to fix it.

    The command line prints it without a stack trace and exits with status 2.
    """


def listing(items: list, limit: int = MAX_LISTED) -> str:
    """Indented lines for an error message: the first `limit` items and how many more there are."""
    lines = [f"  {item}" for item in items[:limit]]
    if len(items) > limit:
        lines.append(f"  ... and {len(items) - limit} more")
    return "\n".join(lines)
