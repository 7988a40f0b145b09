"""Progress bars for a transfer on stderr (rich): bytes with speed and ETA, and objects.

Shown only on a terminal; in a pipe or a log they are off and only the final line is printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kaip.preload.status import Progress


@contextmanager
def transfer_bars(title: str) -> Iterator[Callable[[Progress | None, str], None]]:
    """Two rich progress bars on stderr (bytes with speed and ETA; objects), fed by progress updates."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bars

    from kaip.preload.progress import human_bytes, rate

    console = Console(stderr=True)
    bars = Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[amount]}"),
        TextColumn("{task.fields[speed]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    data = bars.add_task(f"{title} bytes", total=None, amount="", speed="")
    count = bars.add_task(f"{title} objects", total=None, amount="", speed="", visible=False)
    samples: list[tuple[float, int]] = []

    def update(p: Progress | None, state: str) -> None:
        label = f"{title} {state or 'bytes'}"
        if p is None:
            bars.update(data, description=label)
            return
        samples.append((time.monotonic(), p.bytes_done))
        del samples[:-20]  # the speed of the last few updates, not of the whole run
        speed = rate(samples)
        bars.update(
            data,
            description=label,
            total=p.bytes_total,
            completed=p.bytes_done,
            amount=f"{human_bytes(p.bytes_done)}/{human_bytes(p.bytes_total)}",
            speed=f"{human_bytes(speed)}/s" if speed is not None else "",
        )
        bars.update(
            count,
            total=p.objects_total,
            completed=p.objects_done,
            amount=f"{p.objects_done}/{p.objects_total} objects",
            visible=True,
        )

    with bars:
        yield update
