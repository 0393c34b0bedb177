"""Progress in rule logs: plain lines, no carriage-return redraws."""

from __future__ import annotations

import io

from twostream.progress import PlainProgress, progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_file_gets_plain_lines():
    out = io.StringIO()
    bar = progress(range(5), total=5, desc="flow torch", unit="pair", file=out, leave=False, mininterval=2.0)
    assert isinstance(bar, PlainProgress)
    bar.interval = 0.0  # a line at every step
    assert list(bar) == [0, 1, 2, 3, 4]
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and lines[-1].startswith("flow torch: 5/5 pair (100%), ")
    assert len(lines) == 5


def test_short_loops_stay_silent_and_updates_count():
    out = io.StringIO()
    with progress(total=10, desc="decode", unit="video", file=out, leave=False) as bar:
        bar.update(4)
        bar.set_postfix(loss="0.5")
    assert out.getvalue() == ""  # shorter than the interval, leave=False
    out = io.StringIO()
    with progress(total=10, desc="decode", unit="video", file=out) as bar:
        bar.update(4)
    assert out.getvalue().startswith("decode: 4/10 video (40%), ")


def test_a_terminal_gets_tqdm():
    """Control: on a terminal the bar redraws with carriage returns."""
    out = Tty()
    bar = progress(range(3), total=3, desc="x", file=out, mininterval=0)
    assert not isinstance(bar, PlainProgress)
    list(bar)
    assert "\r" in out.getvalue()
