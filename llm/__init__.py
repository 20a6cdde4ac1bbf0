"""The only package that imports langchain: the model factory, prompts and the offline model."""

from llm.mind import compose_reply, roll
from llm.models import OfflineChatModel, UnknownModel, chat_model, runs_in_process
from llm.processing import MessageReader, analyse_messages
from llm.speaker import choose_speaker

__all__ = [
    "OfflineChatModel",
    "MessageReader",
    "analyse_messages",
    "UnknownModel",
    "chat_model",
    "choose_speaker",
    "compose_reply",
    "roll",
    "runs_in_process",
]
