"""The client, the local server and the phone bridge on uvloop's event loop.

uvicorn (and so any FastAPI or Starlette app a user embeds a session in) runs on uvloop
whenever it is installed, and uvloop's transports are not ``asyncio.Transport``
subclasses. These tests run existing loopback tests unchanged inside ``uvloop.run``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from tests import test_session, test_telephony_calls, test_transport

Case = Callable[[], Coroutine[Any, Any, None]]

TRANSPORT: list[Case] = [
    test_transport.test_messages_in_order_and_send,
    test_transport.test_back_pressure_pauses_reading_and_drops_nothing,
    test_transport.test_close_while_reading_is_paused_completes_the_handshake,
    test_transport.test_pings_answered_keep_a_live_link_open,
    test_transport.test_dead_link_noticed_by_keepalive,
    test_transport.test_cancelled_close_still_closes,
    test_transport.test_close_code_4001_reported,
    test_transport.test_connection_refused_and_timeout,
    test_transport.test_session_fails_on_invalid_utf8_with_1007,
    test_transport.test_wss_with_tls_verification,
]


@pytest.mark.parametrize("case", TRANSPORT, ids=lambda case: case.__name__)
def test_transport_on_uvloop(case: Case) -> None:
    """The WebSocket transport behaves the same on uvloop (it failed every connect)."""
    uvloop.run(case())


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_session_acknowledgements_on_uvloop(dialect: str) -> None:
    """A whole session (update, commit/clear/retrieve/truncate/delete acks) on uvloop."""
    uvloop.run(test_session.test_update_waits_for_session_updated(dialect))
    uvloop.run(test_session.test_commit_clear_retrieve_truncate_delete_acks(dialect))


def test_phone_call_with_barge_in_on_uvloop() -> None:
    """Phone server, bridge, session and local server together on uvloop (as uvicorn runs)."""
    uvloop.run(test_telephony_calls.test_barge_in_while_the_reply_is_still_streaming())
