"""The journal's record of a streamed answer: bytes, events and when each event left."""

from __future__ import annotations

import pytest

from mockserver.server import journal as journal_module
from mockserver.server.journal import Journal


def test_event_times_note_each_completed_event_once_at_its_write() -> None:
    entry = Journal().start("POST", "/api/gpt/", {})
    entry.expect_events((10, 20, 30, 40))
    entry.sent_streamed(5, 0.0)  # half an event: nothing completed yet
    assert (entry.bytes_sent, entry.events_sent, entry.event_times) == (5, 0, None)
    entry.sent_streamed(10, 0.0200004)
    entry.sent_streamed(15, 0.03)
    entry.sent_streamed(40, 0.0412345678)  # one write completes three events
    assert (entry.bytes_sent, entry.events_sent) == (40, 4)
    assert entry.event_times == [0.02, 0.041235, 0.041235, 0.041235]
    assert entry.to_json()["event_times"] == [0.02, 0.041235, 0.041235, 0.041235]


def test_event_times_stop_at_their_bound_while_the_counts_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(journal_module, "MAX_EVENT_TIMES", 3)
    entry = Journal().start("POST", "/api/gpt/", {})
    entry.expect_events(tuple(range(1, 11)))
    entry.sent_streamed(2, 0.5)
    entry.sent_streamed(3, 0.75)
    entry.sent_streamed(10, 1.0)
    assert entry.event_times == [0.5, 0.5, 0.75]
    assert (entry.events_sent, entry.bytes_sent) == (10, 10)
