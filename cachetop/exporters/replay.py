"""ReplayPlayer: a recording played back as a Source (a Timeline: engine/source.py), with step,
seek and pause.

The dashboard takes any Source, so `cachetop replay FILE` is the ordinary dashboard on recorded
data. Frames are published at the pace they were recorded, scaled by `speed`; `+`/`-`
(set_interval) change the speed. Step and seek pause playback, so the frame on screen stays put
until the operator resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics

from cachetop.engine.source import SourceBase, SourceCapabilities
from cachetop.exporters.recorder import Recording, RecordingError
from cachetop.model import Snapshot
from cachetop.util.aio import cancel_and_wait

log = logging.getLogger(__name__)


class ReplayPlayer(SourceBase):
    # No refresh (a recording has nothing new to poll) and no act (no live server behind it).
    capabilities = SourceCapabilities(pause=True, pace=True, step=True, seek=True)

    def __init__(self, recording: Recording, *, speed: float = 1.0, start_paused: bool = False) -> None:
        gaps = [b - a for a, b in zip(recording.times, recording.times[1:], strict=False) if b > a]
        self.recorded_interval = statistics.median(gaps) if gaps else 1.0
        super().__init__(interval=self.recorded_interval / speed, paused=start_paused)
        self.recording = recording
        self.speed = speed
        self.position = -1  # index of the frame last published
        self.error: str | None = None  # a frame that could not be read: playback stops before it
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def frame_count(self) -> int:
        return len(self.recording)

    # --- the Source protocol ------------------------------------------------------------------------

    def resume(self) -> None:
        if self.at_end:
            self.position = -1  # resuming at the end starts over
        super().resume()
        self._wake.set()

    def refresh_now(self) -> None:
        """Shows the current frame again (a replay has nothing new to poll)."""
        if self.position >= 0:
            self._publish(self.position)

    def set_interval(self, seconds: float) -> None:
        """The dashboard's +/-: a longer interval plays slower, a shorter one faster."""
        super().set_interval(max(0.01, seconds))
        self.speed = self.recorded_interval / self.interval

    # --- stepping -----------------------------------------------------------------------------------

    @property
    def at_end(self) -> bool:
        return self.position >= len(self.recording) - 1

    def step(self, frames: int = 1) -> Snapshot:
        """Pauses and shows the frame `frames` away (negative: back), clamped to the recording."""
        self.pause()
        return self._publish(min(max(self.position + frames, 0), len(self.recording) - 1))

    def seek(self, *, index: int | None = None, time: float | None = None) -> Snapshot:
        """Pauses and shows a frame by index or by wall-clock time (the last frame at or before it)."""
        self.pause()
        if index is None:
            index = self.recording.index_at(time if time is not None else self.recording.times[0])
        return self._publish(min(max(index, 0), len(self.recording) - 1))

    def _publish(self, index: int) -> Snapshot:
        try:
            snap = self.recording[index]
        except RecordingError as exc:
            # A damaged or oversized frame (see recorder.STATE_MAX): stay on the last good one.
            self.pause()
            if self.error is None:
                log.error("%s", exc)
            self.error = str(exc)
            if self.latest is None:
                raise
            return self.latest
        self.position = index
        self.deliver_now(snap)
        return snap

    # --- playback -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._play(), name="replay")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    async def _play(self) -> None:
        times = self.recording.times
        while True:
            await self._running.wait()
            if self.at_end:
                self.pause()  # stop on the last frame; resume() starts over
                continue
            self._publish(self.position + 1)
            if self.at_end:
                continue
            delay = (times[self.position + 1] - times[self.position]) / max(self.speed, 1e-6)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, delay))
