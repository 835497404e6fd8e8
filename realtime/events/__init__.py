"""The realtime protocol as typed models, for both dialects.

``beta`` is the protocol of openapi-2025-04 (flat sessions, ``response.audio.*``),
``ga`` the protocol of openapi-2026-08 (nested ``audio.input``/``audio.output``
sessions, ``response.output_audio.*``).  This package is pure: it does no I/O.

Typical use::

    event = parse_server_event(frame, dialect="ga")
    frame = encode_client_event(InputAudioBufferAppendEvent.from_pcm(pcm))

Every model of the family modules is re-exported here.
"""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import __all__ as _base_all
from .calls import *  # noqa: F403
from .calls import __all__ as _calls_all
from .codec import *  # noqa: F403
from .codec import __all__ as _codec_all
from .common import *  # noqa: F403
from .common import __all__ as _common_all
from .config import *  # noqa: F403
from .config import __all__ as _config_all
from .conversation import *  # noqa: F403
from .conversation import __all__ as _conversation_all
from .dialect import *  # noqa: F403
from .dialect import __all__ as _dialect_all
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .input_audio_buffer import *  # noqa: F403
from .input_audio_buffer import __all__ as _input_all
from .items import *  # noqa: F403
from .items import __all__ as _items_all
from .mcp import *  # noqa: F403
from .mcp import __all__ as _mcp_all
from .output_audio_buffer import *  # noqa: F403
from .output_audio_buffer import __all__ as _output_all
from .rate_limits import *  # noqa: F403
from .rate_limits import __all__ as _rate_limits_all
from .registry import *  # noqa: F403
from .registry import __all__ as _registry_all
from .responses import *  # noqa: F403
from .responses import __all__ as _responses_all
from .session import *  # noqa: F403
from .session import __all__ as _session_all
from .transcription import *  # noqa: F403
from .transcription import __all__ as _transcription_all
from .translation import *  # noqa: F403
from .translation import __all__ as _translation_all

__all__ = [
    *_base_all,
    *_calls_all,
    *_codec_all,
    *_common_all,
    *_config_all,
    *_conversation_all,
    *_dialect_all,
    *_errors_all,
    *_input_all,
    *_items_all,
    *_mcp_all,
    *_output_all,
    *_rate_limits_all,
    *_registry_all,
    *_responses_all,
    *_session_all,
    *_transcription_all,
    *_translation_all,
]
