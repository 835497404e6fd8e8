"""The local server's translators: Apertium (pairs and pivots) and the ``--translator`` specs."""

from __future__ import annotations

import pytest

from realtime.exceptions import ConfigError
from realtime.server.translators import (
    ApertiumTranslator,
    ChatTranslator,
    load_translator,
)
from tests.test_translation_session import needs_apertium


async def _translate(tr: ApertiumTranslator, text: str, source: str, target: str) -> str:
    return "".join([piece async for piece in tr.translate(text, source=source, target=target)])


async def test_apertium_direct_and_pivot() -> None:
    needs_apertium()
    tr = ApertiumTranslator()
    assert tr.modes_for("en", "es") == ("eng-spa",)
    assert tr.modes_for("eng", "spa") == ("eng-spa",)  # ISO 639-3 codes work too
    assert tr.modes_for("en", "fr") == ("eng-spa", "es-fr")  # through Spanish
    assert tr.check("en", "fr") is None
    assert "mesa" in (await _translate(tr, "The table is red.", "en", "es")).lower()
    assert (
        (await _translate(tr, "Good morning, my friend.", "en", "fr")).lower().startswith("bonjour")
    )


async def test_apertium_refuses_a_pair_it_lacks() -> None:
    needs_apertium()
    tr = ApertiumTranslator()
    assert tr.modes_for("en", "ja") is None
    reason = tr.check("en", "ja")
    assert reason is not None and "eng-spa" in reason and "--translator" in reason
    with pytest.raises(ConfigError, match="no Apertium pair"):
        await _translate(tr, "Hello.", "en", "ja")


def test_translator_specs() -> None:
    chat = load_translator("openai-compatible:http://127.0.0.1:9/v1#model=m")
    assert isinstance(chat, ChatTranslator)
    assert chat.responder.model == "m" and chat.responder.base_url == "http://127.0.0.1:9/v1"
    assert chat.check("en", "ja") is None and chat.check("en", " ") is not None
    assert load_translator("none") is None
    for spec in ("apertium:x", "google", "openai-compatible:"):
        with pytest.raises(ConfigError, match="unknown translator"):
            load_translator(spec)
    auto = load_translator(None)
    assert auto is None or isinstance(auto, ApertiumTranslator)
