"""A command in a real terminal, as a person runs it: tmux starts it in a detached session of a
given size, the screen is read with capture-pane, keys are typed with send-keys."""

from __future__ import annotations

import subprocess


def start(session: str, command: str, size: tuple[int, int] = (120, 30)) -> None:
    """`command` runs through sh in a new detached session `session` of size (columns, rows)."""
    width, height = size
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            str(width),
            "-y",
            str(height),
            "sh",
            "-c",
            command,
        ],
        check=True,
    )


def screen(session: str) -> str:
    out = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
    return out.stdout


def send_keys(session: str, *keys: str, literal: bool = False) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, *(["-l"] if literal else []), *keys], check=True)


def kill(session: str) -> None:
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
