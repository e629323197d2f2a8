"""Request fields, and the OpenAI-compatible side of the daemon: sampling fields, the request a chat or
completion carries, response bodies and server-sent events. Plain functions of dicts and strings; a
bad field is an EngineError, which the HTTP handler answers with a 400.
"""
import json
import math
import time
import uuid
from typing import Iterable, Iterator

from .errors import EngineError


def string_field(fields: dict, name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise EngineError(f'"{name}" must be a string')
    return value


def flag_field(fields: dict, name: str, default: bool) -> bool:
    value = fields.get(name)
    if value is None:
        return default
    flags = {"1": True, "true": True, "0": False, "false": False}  # form fields arrive as text
    if isinstance(value, str) and value.lower() in flags:
        return flags[value.lower()]
    if not isinstance(value, bool):
        raise EngineError(f'"{name}" must be true or false')
    return value


def number_field(fields: dict, name: str, default, low, high, kind=int):
    value = fields.get(name)
    if value is None:
        return default
    if isinstance(value, str):  # form fields arrive as text
        try:
            value = kind(value)
        except ValueError:
            value = None
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or (kind is int and value != int(value))):
        raise EngineError(f'"{name}" must be a number')
    if not low <= value <= high:
        raise EngineError(f'"{name}" must be between {low} and {high}')
    return kind(value)


def sampling(fields: dict) -> dict:
    """OpenAI sampling fields. temperature defaults to 0: greedy is what a small command model does best."""
    if number_field(fields, "n", 1, 1, 1) != 1:
        raise EngineError('"n" must be 1')
    return {
        "max_new_tokens": number_field(fields, "max_tokens", None, 1, 4096),
        "temperature": number_field(fields, "temperature", 0.0, 0.0, 2.0, float),
        "top_p": number_field(fields, "top_p", 1.0, 0.0, 1.0, float),
        "top_k": number_field(fields, "top_k", 0, 0, 10_000),
        "seed": number_field(fields, "seed", None, -2**63, 2**63 - 1),
    }


def chat_request(fields: dict) -> str:
    """The request a chat carries: the last user message (a small model answers one request, not a dialogue)."""
    messages = fields.get("messages")
    if not isinstance(messages, list) or not messages:
        raise EngineError('"messages" must be a non-empty list')
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            if isinstance(content, str):
                return content
            raise EngineError("a user message's content must be text")
    raise EngineError("no user message in \"messages\"")


def completion_request(fields: dict) -> str:
    prompt = fields.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise EngineError('"prompt" must be a string')
    return prompt


def response_meta(chat: bool, model: str) -> dict:
    """The fields every response and chunk of one completion share."""
    return {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}", "created": int(time.time()),
            "model": model}


def completion_body(meta: dict, text: str, prompt_tokens: int, completion_tokens: int, chat: bool) -> dict:
    if chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    return {**meta, "object": "chat.completion" if chat else "text_completion", "choices": [choice], "usage": usage}


def sse_events(pieces: Iterable[str], meta: dict, chat: bool) -> Iterator[bytes]:
    """Server-sent events: (for a chat, the assistant's role first) one `data:` chunk per piece of
    text, a final chunk, then `data: [DONE]`."""
    kind = "chat.completion.chunk" if chat else "text_completion"

    def event(delta: str | None, finish: str | None = None, role: bool = False) -> bytes:
        if chat:
            body = {"role": "assistant", "content": ""} if role else ({"content": delta} if delta else {})
            choice = {"index": 0, "delta": body, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": finish}
        chunk = {**meta, "object": kind, "choices": [choice]}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

    if chat:
        yield event(None, role=True)
    for piece in pieces:
        yield event(piece)
    yield event(None, finish="stop")
    yield b"data: [DONE]\n\n"
