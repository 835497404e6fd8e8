"""MCP server events (GA): listing a server's tools and calling them."""

from __future__ import annotations

from typing import Literal

from .base import Int, ItemRefEvent, ResponseRefEvent

__all__ = [
    "McpListToolsCompletedEvent",
    "McpListToolsFailedEvent",
    "McpListToolsInProgressEvent",
    "ResponseMcpCallArgumentsDeltaEvent",
    "ResponseMcpCallArgumentsDoneEvent",
    "ResponseMcpCallCompletedEvent",
    "ResponseMcpCallFailedEvent",
    "ResponseMcpCallInProgressEvent",
]


class McpListToolsInProgressEvent(ItemRefEvent):
    """Listing an MCP server's tools started."""

    type: Literal["mcp_list_tools.in_progress"] = "mcp_list_tools.in_progress"


class McpListToolsCompletedEvent(ItemRefEvent):
    """Listing an MCP server's tools succeeded."""

    type: Literal["mcp_list_tools.completed"] = "mcp_list_tools.completed"


class McpListToolsFailedEvent(ItemRefEvent):
    """Listing an MCP server's tools failed."""

    type: Literal["mcp_list_tools.failed"] = "mcp_list_tools.failed"


class ResponseMcpCallArgumentsDeltaEvent(ResponseRefEvent):
    """A piece of an MCP tool call's JSON arguments."""

    type: Literal["response.mcp_call_arguments.delta"] = "response.mcp_call_arguments.delta"
    item_id: str
    output_index: Int
    delta: str
    obfuscation: str | None = None


class ResponseMcpCallArgumentsDoneEvent(ResponseRefEvent):
    """An MCP tool call's complete JSON arguments."""

    type: Literal["response.mcp_call_arguments.done"] = "response.mcp_call_arguments.done"
    item_id: str
    output_index: Int
    arguments: str


class ResponseMcpCallInProgressEvent(ItemRefEvent):
    """An MCP tool call started."""

    type: Literal["response.mcp_call.in_progress"] = "response.mcp_call.in_progress"
    output_index: Int


class ResponseMcpCallCompletedEvent(ItemRefEvent):
    """An MCP tool call succeeded."""

    type: Literal["response.mcp_call.completed"] = "response.mcp_call.completed"
    output_index: Int


class ResponseMcpCallFailedEvent(ItemRefEvent):
    """An MCP tool call failed."""

    type: Literal["response.mcp_call.failed"] = "response.mcp_call.failed"
    output_index: Int
