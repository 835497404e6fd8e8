"""Conversation items and their content parts.

Beta (``RealtimeConversationItem`` of openapi-2025-04) is one flat object whose
fields depend on ``type``; GA (``RealtimeConversationItem`` of openapi-2026-08) is a
union tagged by ``type`` (messages, function calls and outputs, MCP items).  A GA item
of a type this client does not know (``item_reference`` in ``response.create`` input,
or anything newer) becomes a :class:`GenericItem` instead of an error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag

from ._support import decode_b64, tag_of
from .base import Bool, Model

__all__ = [
    "BetaConversationItem",
    "ContentPart",
    "ConversationItem",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "GenericItem",
    "McpApprovalRequestItem",
    "McpApprovalResponseItem",
    "McpCallItem",
    "McpListToolsItem",
    "MessageItem",
]


class ContentPart(Model):
    """One content part of a message (both dialects).

    ``type`` is ``input_text``, ``input_audio``, ``input_image``, ``output_text``,
    ``output_audio`` (GA), ``text``, ``audio``, ``item_reference`` (beta), …
    """

    type: str | None = None
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None
    id: str | None = None
    image_url: str | None = None
    detail: str | None = None

    def audio_bytes(self) -> bytes:
        """Decode the base64 ``audio`` (empty when there is none)."""
        return decode_b64(self.audio) if self.audio else b""


class BetaConversationItem(Model):
    """A beta conversation item (message, function_call or function_call_output)."""

    id: str | None = None
    type: str | None = None
    object: str | None = None
    status: str | None = None
    role: str | None = None
    content: list[ContentPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None


class _GaItem(Model):
    id: str | None = None
    object: str | None = None
    status: str | None = None


class MessageItem(_GaItem):
    """A GA message item of any ``role`` (``system``, ``user``, ``assistant``)."""

    type: Literal["message"] = "message"
    role: str
    content: list[ContentPart]


class FunctionCallItem(_GaItem):
    """A GA function call made by the model."""

    type: Literal["function_call"] = "function_call"
    call_id: str | None = None
    name: str
    arguments: str


class FunctionCallOutputItem(_GaItem):
    """The output of a function call, sent back by the client (GA)."""

    type: Literal["function_call_output"] = "function_call_output"
    call_id: str
    output: str


class McpApprovalRequestItem(Model):
    """The server asks whether an MCP tool call may run (GA)."""

    type: Literal["mcp_approval_request"] = "mcp_approval_request"
    id: str
    server_label: str
    name: str
    arguments: str


class McpApprovalResponseItem(Model):
    """The client's answer to an MCP approval request (GA)."""

    type: Literal["mcp_approval_response"] = "mcp_approval_response"
    id: str
    approval_request_id: str
    approve: Bool
    reason: str | None = None


class McpListToolsItem(Model):
    """The tools an MCP server offers (GA)."""

    type: Literal["mcp_list_tools"] = "mcp_list_tools"
    id: str | None = None
    server_label: str
    tools: list[dict[str, Any]]


class McpCallItem(Model):
    """A call of an MCP tool, with its output or error once done (GA)."""

    type: Literal["mcp_call"] = "mcp_call"
    id: str
    server_label: str
    name: str
    arguments: str
    approval_request_id: str | None = None
    output: str | None = None
    error: dict[str, Any] | None = None


class GenericItem(Model):
    """A GA item of a type without a model here (``item_reference``, or a newer type)."""

    type: str
    id: str | None = None


_GA_ITEM_TYPES = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_list_tools",
        "mcp_call",
    }
)

ConversationItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[McpApprovalRequestItem, Tag("mcp_approval_request")]
    | Annotated[McpApprovalResponseItem, Tag("mcp_approval_response")]
    | Annotated[McpListToolsItem, Tag("mcp_list_tools")]
    | Annotated[McpCallItem, Tag("mcp_call")]
    | Annotated[GenericItem, Tag("*")],
    Discriminator(tag_of(_GA_ITEM_TYPES)),
]
"""Any GA conversation item."""
