"""The REST audio clients: :class:`AsyncAudioClient` and its small sync facade :class:`AudioClient`.

.. code-block:: python

    async with AsyncAudioClient() as client:                  # OPENAI_API_KEY / OPENAI_BASE_URL
        result = await client.transcribe("talk.wav")          # Transcription
        async for event in client.transcribe_stream("talk.wav"):
            print(event.type)
        async with client.speak("Hello there") as audio:      # PCM16 24 kHz, as it arrives
            async for chunk in audio:
                ...
        key = await client.create_client_secret({"model": "gpt-realtime"})
        # key.value is a session's api_key until key.expires_at

Every failure is an :class:`~realtime.exceptions.APIError` (HTTP status, connection,
malformed body) or a :class:`~realtime.exceptions.ConfigError` (bad arguments, raised
before anything is sent).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypedDict, TypeVar, overload

import httpx
from typing_extensions import Unpack

from realtime.credentials import ApiKey
from realtime.events.translation import TranslationSessionConfig
from realtime.rest._http import (
    DEFAULT_TIMEOUT,
    AzureConfig,
    Endpoint,
    HTTPCore,
    RetryPolicy,
)
from realtime.rest.models import (
    ClientSecretResponse,
    RealtimeSessionResponse,
    TranscriptEvent,
    Transcription,
    TranscriptionDiarized,
    TranscriptionSessionResponse,
    TranscriptionVerbose,
    validate_json,
)
from realtime.rest.multipart import AudioInput, MultipartBody
from realtime.rest.secrets import (
    EphemeralKey,
    SessionConfigLike,
    TranslationClientSecret,
    client_secret_request,
    key_from_client_secret,
    key_from_session,
    key_from_translation_secret,
    session_payload,
    translation_secret_request,
)
from realtime.rest.speech import SpeechStream, speech_request
from realtime.rest.streams import read_body
from realtime.rest.transcription import (
    ChunkingStrategy,
    TranscriptionResult,
    TranscriptStream,
    TranslationResult,
    parse_transcription,
    parse_translation,
    transcription_form,
    translation_form,
)

__all__ = ["AsyncAudioClient", "AudioClient", "TranscribeOptions"]

T = TypeVar("T")
SessionArg = SessionConfigLike | Mapping[str, Any] | None


class TranscribeOptions(TypedDict, total=False):
    """Keyword options shared by the ``transcribe`` overloads (see the implementation)."""

    model: str
    language: str | None
    prompt: str | None
    temperature: float | None
    timestamp_granularities: Sequence[str] | None
    include: Sequence[str] | None
    chunking_strategy: ChunkingStrategy | None
    known_speaker_names: Sequence[str] | None
    known_speaker_references: Sequence[str] | None
    filename: str | None
    sample_rate: int


class AsyncAudioClient:
    """Async client of the REST audio endpoints (transcription, translation, speech, keys).

    ``api_key`` and ``base_url`` default to ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``
    (else ``https://api.openai.com/v1``); pass ``azure=AzureConfig(...)`` for an Azure
    deployment. ``timeout`` is seconds or an ``httpx.Timeout``; failed requests are
    retried up to ``max_retries`` times (see :class:`~realtime.rest.RetryPolicy`).
    Use as ``async with`` or call :meth:`aclose`. ConfigError when no key is available
    for the OpenAI URL or Azure.
    """

    def __init__(
        self,
        api_key: ApiKey | None = None,
        base_url: str | None = None,
        azure: AzureConfig | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        endpoint = Endpoint.resolve(api_key, base_url, azure)
        policy = retry or RetryPolicy(max_retries=max_retries)
        self._core = HTTPCore(endpoint, timeout=timeout, retry=policy, transport=transport)

    @property
    def base_url(self) -> str:
        """The URL requests go to (the Azure endpoint for an Azure profile)."""
        return self._core.endpoint.base_url

    def __repr__(self) -> str:
        kind = "azure" if self._core.endpoint.azure else "openai"
        return f"AsyncAudioClient(base_url={self.base_url!r}, profile={kind!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._core.aclose()

    async def __aenter__(self) -> AsyncAudioClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- transcription -------------------------------------------------------------

    @overload
    async def transcribe(
        self,
        file: AudioInput,
        *,
        response_format: Literal["json"] = ...,
        stream: Literal[False] = ...,
        **options: Unpack[TranscribeOptions],
    ) -> Transcription: ...
    @overload
    async def transcribe(
        self,
        file: AudioInput,
        *,
        response_format: Literal["verbose_json"],
        stream: Literal[False] = ...,
        **options: Unpack[TranscribeOptions],
    ) -> TranscriptionVerbose: ...
    @overload
    async def transcribe(
        self,
        file: AudioInput,
        *,
        response_format: Literal["diarized_json"],
        stream: Literal[False] = ...,
        **options: Unpack[TranscribeOptions],
    ) -> TranscriptionDiarized: ...
    @overload
    async def transcribe(
        self,
        file: AudioInput,
        *,
        response_format: Literal["text", "srt", "vtt"],
        stream: Literal[False] = ...,
        **options: Unpack[TranscribeOptions],
    ) -> str: ...
    @overload
    async def transcribe(
        self,
        file: AudioInput,
        *,
        response_format: str = ...,
        stream: Literal[True],
        **options: Unpack[TranscribeOptions],
    ) -> TranscriptStream: ...
    @overload
    async def transcribe(
        self,
        file: AudioInput,
        *,
        response_format: str = ...,
        stream: bool = ...,
        **options: Unpack[TranscribeOptions],
    ) -> TranscriptionResult | TranscriptStream: ...

    async def transcribe(
        self,
        file: AudioInput,
        *,
        model: str = "gpt-4o-mini-transcribe",
        language: str | None = None,
        prompt: str | None = None,
        response_format: str = "json",
        temperature: float | None = None,
        timestamp_granularities: Sequence[str] | None = None,
        include: Sequence[str] | None = None,
        chunking_strategy: ChunkingStrategy | None = None,
        known_speaker_names: Sequence[str] | None = None,
        known_speaker_references: Sequence[str] | None = None,
        stream: bool = False,
        filename: str | None = None,
        sample_rate: int = 24000,
    ) -> TranscriptionResult | TranscriptStream:
        """Transcribe audio (``POST /audio/transcriptions``).

        ``file`` is a path, bytes, a binary file object or a numpy array (sent as a WAV at
        ``sample_rate``); files stream from disk. Returns the typed result of
        ``response_format`` (Transcription, TranscriptionVerbose, TranscriptionDiarized,
        or str for text/srt/vtt). With ``stream=True`` returns an opened
        :class:`TranscriptStream` of typed events. ConfigError for bad arguments,
        APIError when the request fails.
        """
        form = transcription_form(
            file,
            model=model,
            language=language,
            prompt=prompt,
            response_format=response_format,
            temperature=temperature,
            timestamp_granularities=timestamp_granularities,
            include=include,
            chunking_strategy=chunking_strategy,
            known_speaker_names=known_speaker_names,
            known_speaker_references=known_speaker_references,
            stream=stream,
            filename=filename,
            sample_rate=sample_rate,
        )
        if stream:
            return await self._transcript_stream(form).open()
        response = await self._core.send("POST", "/audio/transcriptions", form=form)
        body = await read_body(response, "transcription")
        return parse_transcription(response_format, body, response.headers.get("x-request-id"))

    def transcribe_stream(
        self,
        file: AudioInput,
        *,
        model: str = "gpt-4o-mini-transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
        include: Sequence[str] | None = None,
        chunking_strategy: ChunkingStrategy | None = None,
        filename: str | None = None,
        sample_rate: int = 24000,
    ) -> TranscriptStream:
        """A streamed transcription, sent when first iterated or entered.

        ``async for event in client.transcribe_stream(path)`` yields
        ``transcript.text.delta`` / ``.segment`` events, then ``transcript.text.done``.
        ConfigError for bad arguments (raised now); APIError while iterating.
        """
        form = transcription_form(
            file,
            model=model,
            language=language,
            prompt=prompt,
            temperature=temperature,
            include=include,
            chunking_strategy=chunking_strategy,
            stream=True,
            filename=filename,
            sample_rate=sample_rate,
        )
        return self._transcript_stream(form)

    def _transcript_stream(self, form: MultipartBody) -> TranscriptStream:
        async def send() -> httpx.Response:
            return await self._core.send(
                "POST",
                "/audio/transcriptions",
                form=form,
                headers={"Accept": "text/event-stream"},
            )

        return TranscriptStream(send)

    async def translate(
        self,
        file: AudioInput,
        *,
        model: str = "whisper-1",
        prompt: str | None = None,
        response_format: str = "json",
        temperature: float | None = None,
        filename: str | None = None,
        sample_rate: int = 24000,
    ) -> TranslationResult:
        """Translate audio into English text (``POST /audio/translations``).

        Same inputs as :meth:`transcribe`; returns Translation (json), TranslationVerbose
        (verbose_json) or str (text, srt, vtt). ConfigError / APIError as there.
        """
        form = translation_form(
            file,
            model=model,
            prompt=prompt,
            response_format=response_format,
            temperature=temperature,
            filename=filename,
            sample_rate=sample_rate,
        )
        response = await self._core.send("POST", "/audio/translations", form=form)
        body = await read_body(response, "translation")
        return parse_translation(response_format, body, response.headers.get("x-request-id"))

    # --- speech --------------------------------------------------------------------

    def speak(
        self,
        text: str,
        *,
        model: str = "gpt-4o-mini-tts",
        voice: str | dict[str, str] = "alloy",
        instructions: str | None = None,
        response_format: str = "pcm",
        speed: float | None = None,
        stream_format: str | None = None,
    ) -> SpeechStream:
        """Synthesize speech (``POST /audio/speech``) as a stream of audio bytes.

        Returns a :class:`SpeechStream` (not yet sent): ``async with`` it or iterate it to
        receive bytes as they arrive; ``pcm`` is PCM16 mono 24 kHz. With
        ``stream_format="sse"`` use ``.events()`` for typed events. ConfigError for bad
        arguments (raised now); APIError while opening or reading.
        """
        body = speech_request(
            text,
            model=model,
            voice=voice,
            instructions=instructions,
            response_format=response_format,
            speed=speed,
            stream_format=stream_format,
        )
        accept = "text/event-stream" if stream_format == "sse" else "application/octet-stream"

        async def send() -> httpx.Response:
            return await self._core.send(
                "POST", "/audio/speech", json_body=body, headers={"Accept": accept}
            )

        return SpeechStream(send, response_format=response_format, stream_format=stream_format)

    # --- ephemeral keys ------------------------------------------------------------

    async def _post_json(self, path: str, body: dict[str, Any], what: str) -> bytes:
        response = await self._core.send("POST", path, json_body=body)
        return await read_body(response, what)

    async def create_realtime_session(
        self, session: SessionArg = None, *, model: str | None = None
    ) -> EphemeralKey:
        """Mint a key with the beta ``POST /realtime/sessions``.

        ``session`` is a beta session config (mapping or SessionConfig); returns the key
        and its expiry, with the server's session in ``.session``. APIError on failure.
        """
        body = session_payload(session, "beta", model=model)
        data = await self._post_json("/realtime/sessions", body, "realtime session")
        return key_from_session(validate_json(RealtimeSessionResponse, data))

    async def create_transcription_session(self, session: SessionArg = None) -> EphemeralKey:
        """Mint a key with the beta ``POST /realtime/transcription_sessions``."""
        body = session_payload(session, "beta")
        data = await self._post_json(
            "/realtime/transcription_sessions", body, "transcription session"
        )
        return key_from_session(validate_json(TranscriptionSessionResponse, data))

    async def create_client_secret(
        self,
        session: SessionArg = None,
        *,
        expires_after_seconds: int | None = None,
        session_type: str = "realtime",
    ) -> EphemeralKey:
        """Mint a key with the GA ``POST /realtime/client_secrets``.

        ``session`` is a GA session config (``type`` defaults to ``session_type``);
        ``expires_after_seconds`` is 10..7200. APIError on failure.
        """
        body = client_secret_request(
            session, expires_after_seconds=expires_after_seconds, session_type=session_type
        )
        data = await self._post_json("/realtime/client_secrets", body, "client secret")
        return key_from_client_secret(validate_json(ClientSecretResponse, data))

    async def create_translation_client_secret(
        self,
        session: TranslationSessionConfig | Mapping[str, Any] | None = None,
        *,
        model: str = "gpt-realtime-translate",
        expires_after_seconds: int | None = None,
    ) -> EphemeralKey:
        """Mint a key for a translation session (``POST /realtime/translations/client_secrets``).

        ``model`` is used when ``session`` names none. ConfigError for an unsupported input
        audio format or expiry; APIError on failure. Pass the key's ``value`` as
        ``api_key`` of :func:`realtime.translation.connect_translation`.
        """
        body = translation_secret_request(
            session, model=model, expires_after_seconds=expires_after_seconds
        )
        data = await self._post_json(
            "/realtime/translations/client_secrets", body, "translation client secret"
        )
        return key_from_translation_secret(validate_json(TranslationClientSecret, data))


class AudioClient:
    """Blocking facade of :class:`AsyncAudioClient` for scripts and notebooks.

    Runs the async client on a private event loop in a daemon thread; every method
    blocks until done and raises what the async method raises. Call :meth:`close` (or
    use ``with``) to stop the thread.
    """

    def __init__(
        self,
        api_key: ApiKey | None = None,
        base_url: str | None = None,
        azure: AzureConfig | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = AsyncAudioClient(
            api_key, base_url, azure, timeout=timeout, max_retries=max_retries, retry=retry
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="realtime-rest", daemon=True
        )
        self._thread.start()
        self._closed = False

    def __repr__(self) -> str:
        return f"AudioClient(base_url={self._client.base_url!r})"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("the AudioClient is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        """Close connections and stop the private loop; safe to call twice."""
        if self._closed:
            return
        self._run(self._client.aclose())
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> AudioClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def transcribe(self, file: AudioInput, **options: Any) -> TranscriptionResult:
        """Blocking :meth:`AsyncAudioClient.transcribe` (``stream`` is not accepted here)."""
        if options.get("stream"):
            raise TypeError("use transcribe_stream() for a streamed transcription")
        result: TranscriptionResult | TranscriptStream = self._run(
            self._client.transcribe(file, **options)
        )
        assert not isinstance(result, TranscriptStream)
        return result

    def transcribe_stream(self, file: AudioInput, **options: Any) -> Iterator[TranscriptEvent]:
        """Blocking iterator over :meth:`AsyncAudioClient.transcribe_stream` events."""
        stream = self._client.transcribe_stream(file, **options)
        return self._iterate(stream, stream.aclose)

    def translate(self, file: AudioInput, **options: Any) -> TranslationResult:
        """Blocking :meth:`AsyncAudioClient.translate`."""
        return self._run(self._client.translate(file, **options))

    def speak(self, text: str, **options: Any) -> Iterator[bytes]:
        """Blocking iterator over the audio chunks of :meth:`AsyncAudioClient.speak`."""
        stream = self._client.speak(text, **options)
        return self._iterate(aiter(stream), stream.aclose)

    def create_realtime_session(self, session: SessionArg = None, **kw: Any) -> EphemeralKey:
        """Blocking :meth:`AsyncAudioClient.create_realtime_session`."""
        return self._run(self._client.create_realtime_session(session, **kw))

    def create_transcription_session(self, session: SessionArg = None) -> EphemeralKey:
        """Blocking :meth:`AsyncAudioClient.create_transcription_session`."""
        return self._run(self._client.create_transcription_session(session))

    def create_client_secret(self, session: SessionArg = None, **kw: Any) -> EphemeralKey:
        """Blocking :meth:`AsyncAudioClient.create_client_secret`."""
        return self._run(self._client.create_client_secret(session, **kw))

    def create_translation_client_secret(
        self, session: TranslationSessionConfig | Mapping[str, Any] | None = None, **kw: Any
    ) -> EphemeralKey:
        """Blocking :meth:`AsyncAudioClient.create_translation_client_secret`."""
        return self._run(self._client.create_translation_client_secret(session, **kw))

    def _iterate(self, it: AsyncIterator[T], close: Any) -> Iterator[T]:
        async def step() -> tuple[bool, T | None]:
            try:
                return True, await it.__anext__()
            except StopAsyncIteration:
                return False, None

        try:
            while True:
                more, item = self._run(step())
                if not more:
                    return
                yield item  # type: ignore[misc]
        finally:
            if not self._closed:
                self._run(close())
