"""Errors a user can act on. Their message names the file and the problem."""


class InputError(ValueError):
    """Bad input data (a corrupt video, a malformed shard, a wrong dtype...)."""


class OutputError(InputError):
    """An output cannot be written (no space left, read-only, permission denied, a folder in
    the way...); the message names the final output path, never only the temporary one."""


def one_line(message: str) -> str:
    """The message as one line.

    A DataLoader worker's error reaches the main process as ``Caught StoreError in
    DataLoader worker process 0. Original Traceback ...``; its last line holds the
    original message (``twostream.store.StoreError: <message>``).
    """
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    if len(lines) > 1 and "Original Traceback" in message:
        last = lines[-1]
        head, sep, rest = last.partition(": ")
        return rest if sep and "Error" in head else last
    return " ".join(line.strip() for line in lines)
