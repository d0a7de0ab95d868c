"""The start-up progress: a live line in the foreground of a terminal, whole lines in the background
(so that a bot sharing the terminal does not write into it), log lines otherwise."""

from __future__ import annotations

import io
import logging
import os

import pytest

from shardrunner.cluster.supervisor.progress import Progress, choose_mode


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def drive(progress: Progress) -> None:
    for ready in (0, 0, 1, 4):
        progress.update(ready=ready, total=4, to_identify=4 - ready, eta=5.0 * (4 - ready), now=float(ready))


def test_progress_when_in_the_terminals_foreground_redraws_one_line_and_ends_it() -> None:
    out = Tty()
    drive(Progress("auto", out, mode="live"))
    assert out.getvalue().endswith("\r\x1b[2Kshards ready 4/4\n")
    assert out.getvalue().count("\n") == 1


def test_progress_when_in_the_background_of_a_shared_terminal_writes_whole_lines_per_change() -> None:
    out = Tty()
    drive(Progress("auto", out, mode="lines"))
    assert out.getvalue() == (
        "shards ready 0/4, 4 to identify, ETA 20 s\n"
        "shards ready 1/4, 3 to identify, ETA 15 s\n"
        "shards ready 4/4\n"
    )
    assert "\r" not in out.getvalue()


def test_progress_when_stderr_is_not_a_terminal_logs(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    with caplog.at_level(logging.INFO, "shardrunner.supervisor"):
        drive(Progress("auto", out))
    assert out.getvalue() == ""
    assert "shards ready 4/4" in caplog.messages
    assert "all 4 shards ready" in caplog.messages


def test_progress_mode_when_chosen_follows_the_setting_the_terminal_and_the_foreground() -> None:
    assert choose_mode("always", io.StringIO()) == "live"
    assert choose_mode("never", Tty()) == "log"
    assert choose_mode("auto", io.StringIO()) == "log"
    # A StringIO has no terminal to be in the foreground of: treated as the foreground.
    assert choose_mode("auto", Tty()) == "live"


def test_progress_mode_when_the_terminals_foreground_is_another_process_group_writes_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class RealTty(Tty):
        def fileno(self) -> int:
            return 2

    monkeypatch.setattr(os, "tcgetpgrp", lambda fd: os.getpgrp() + 1)  # the shell runs us with `&`
    assert choose_mode("auto", RealTty()) == "lines"
    monkeypatch.setattr(os, "tcgetpgrp", lambda fd: os.getpgrp())
    assert choose_mode("auto", RealTty()) == "live"
