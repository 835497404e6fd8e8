"""Conversation events: creating, retrieving, truncating and deleting items.

The item shapes differ between the dialects (see :mod:`.items`), so the events that
carry an item exist twice (the beta class prefixed ``Beta``).  GA adds
``conversation.item.added`` (the counterpart of beta ``conversation.item.created``)
and ``conversation.item.done``.
"""

from __future__ import annotations

from typing import Literal

from .base import ClientEvent, Int, ItemRefEvent, Model, ServerEvent
from .items import BetaConversationItem, ConversationItem

__all__ = [
    "BetaConversationItemCreateEvent",
    "BetaConversationItemCreatedEvent",
    "BetaConversationItemRetrievedEvent",
    "Conversation",
    "ConversationCreatedEvent",
    "ConversationItemAddedEvent",
    "ConversationItemCreateEvent",
    "ConversationItemCreatedEvent",
    "ConversationItemDeleteEvent",
    "ConversationItemDeletedEvent",
    "ConversationItemDoneEvent",
    "ConversationItemRetrieveEvent",
    "ConversationItemRetrievedEvent",
    "ConversationItemTruncateEvent",
    "ConversationItemTruncatedEvent",
]


class Conversation(Model):
    """The conversation of a session (``id``, ``object``)."""

    id: str | None = None
    object: str | None = None


class ConversationCreatedEvent(ServerEvent):
    """The session's conversation was created (right after ``session.created``)."""

    type: Literal["conversation.created"] = "conversation.created"
    conversation: Conversation


# --- client events -------------------------------------------------------------------------


class BetaConversationItemCreateEvent(ClientEvent):
    """Add an item to the conversation (beta shape)."""

    type: Literal["conversation.item.create"] = "conversation.item.create"
    previous_item_id: str | None = None
    item: BetaConversationItem


class ConversationItemCreateEvent(ClientEvent):
    """Add an item to the conversation (GA shape)."""

    type: Literal["conversation.item.create"] = "conversation.item.create"
    previous_item_id: str | None = None
    item: ConversationItem


class ConversationItemDeleteEvent(ClientEvent):
    """Remove an item from the conversation."""

    type: Literal["conversation.item.delete"] = "conversation.item.delete"
    item_id: str


class ConversationItemRetrieveEvent(ClientEvent):
    """Ask the server for its copy of an item."""

    type: Literal["conversation.item.retrieve"] = "conversation.item.retrieve"
    item_id: str


class ConversationItemTruncateEvent(ClientEvent):
    """Cut an assistant audio item at ``audio_end_ms`` (what the user actually heard)."""

    type: Literal["conversation.item.truncate"] = "conversation.item.truncate"
    item_id: str
    content_index: Int
    audio_end_ms: Int


# --- server events -------------------------------------------------------------------------


class BetaConversationItemCreatedEvent(ServerEvent):
    """An item was added to the conversation (beta shape)."""

    type: Literal["conversation.item.created"] = "conversation.item.created"
    # Required by the beta spec; servers send null for the first item.
    previous_item_id: str | None
    item: BetaConversationItem


class ConversationItemCreatedEvent(ServerEvent):
    """An item was added to the conversation (GA shape, older name of ``added``)."""

    type: Literal["conversation.item.created"] = "conversation.item.created"
    previous_item_id: str | None = None
    item: ConversationItem


class ConversationItemAddedEvent(ServerEvent):
    """An item was added to the conversation (GA)."""

    type: Literal["conversation.item.added"] = "conversation.item.added"
    previous_item_id: str | None = None
    item: ConversationItem


class ConversationItemDoneEvent(ServerEvent):
    """An item of the conversation is complete (GA)."""

    type: Literal["conversation.item.done"] = "conversation.item.done"
    previous_item_id: str | None = None
    item: ConversationItem


class BetaConversationItemRetrievedEvent(ServerEvent):
    """The server's copy of an item, answering ``conversation.item.retrieve`` (beta)."""

    type: Literal["conversation.item.retrieved"] = "conversation.item.retrieved"
    item: BetaConversationItem


class ConversationItemRetrievedEvent(ServerEvent):
    """The server's copy of an item, answering ``conversation.item.retrieve`` (GA)."""

    type: Literal["conversation.item.retrieved"] = "conversation.item.retrieved"
    item: ConversationItem


class ConversationItemDeletedEvent(ItemRefEvent):
    """An item was removed from the conversation."""

    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"


class ConversationItemTruncatedEvent(ItemRefEvent):
    """An assistant audio item was truncated."""

    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    content_index: Int
    audio_end_ms: Int
