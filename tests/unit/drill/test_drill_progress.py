"""The drill's progress lines: each step and restored part against the RTO clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cityguard.drill.progress import DrillProgress, format_bytes


def test_bytes_are_shown_in_binary_units() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1536, 5 * 1024**2, 3 * 1024**3, 5000 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
        "5000.0 GiB",
    ]


def test_steps_and_parts_say_how_much_of_the_rto_is_spent() -> None:
    heard: list[str] = []
    started = datetime.now(UTC) - timedelta(seconds=90)
    progress = DrillProgress(heard.append, started, 3600)

    progress.step("restore")
    progress.part("portal-db", 1, 2, 1536)
    progress.restored(5 * 1024**2)

    assert heard[0].startswith("restore (1m3") and heard[0].endswith(" of RTO 1h00m00s)")
    assert heard[1].startswith("restore 1/2: portal-db, 1.5 KiB of it back so far (1m3")
    assert heard[2].startswith("restore done: 5.0 MiB back (1m3")
    assert progress.clock(started + timedelta(seconds=12.34)) == "12.3s of RTO 1h00m00s"


def test_a_streaming_part_says_how_much_is_back_at_most_every_few_seconds() -> None:
    heard: list[str] = []
    now = [0.0]
    progress = DrillProgress(heard.append, datetime.now(UTC), 3600)
    hear = progress.streaming("portal-db", 2, 2, every_s=10, clock=lambda: now[0])

    for second, moved in ((1, 1024), (9, 2048), (11, 4096), (15, 8192), (22, 1024**2)):
        now[0] = second
        hear(moved)

    assert [line.split(" (")[0] for line in heard] == [
        "restore 2/2: portal-db, 4.0 KiB of it back so far",
        "restore 2/2: portal-db, 1.0 MiB of it back so far",
    ]
