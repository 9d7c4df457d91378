"""Multi-turn chats (module 07): the loss on every assistant turn, and only there.

A real chat has several turns. SFT trains the model to write the assistant's turns, so the loss goes on
each assistant turn's content and its `<|end|>`, never on the system prompt, the user's turns or the role
tokens. We build the labels turn by turn (each turn rendered by the chat template, tokenised, appended),
which is easy to read and to check: the ids must equal the whole chat tokenised at once, and the mask must
equal what Hugging Face computes from the template's `{% generation %}` block
(`apply_chat_template(..., return_assistant_tokens_mask=True)`).
"""

from __future__ import annotations

import torch

from .sft import IGNORE_INDEX
from .tokenizer import END, ROLE_TOKENS


def validate_chat(messages: list[dict]) -> None:
    """A clear error unless `messages` alternates user/assistant (after an optional system turn) and ends with the assistant."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("a chat must be a non-empty list of {'role', 'content'} dicts")
    turns = messages[1:] if messages[0].get("role") == "system" else messages
    for i, m in enumerate(turns):
        want = "user" if i % 2 == 0 else "assistant"
        if not isinstance(m, dict) or m.get("role") != want or not isinstance(m.get("content"), str):
            raise ValueError(f"turn {i} must be a {want!r} message with string content, got {m!r}")
    if not turns or turns[-1]["role"] != "assistant":
        raise ValueError("a training chat must end with an assistant turn")


def multi_turn_features(messages: list[dict], tokenizer) -> dict[str, torch.Tensor]:
    """input_ids and labels (T,) of a whole chat: labels = ids on assistant content + <|end|>, else -100."""
    validate_chat(messages)
    ids: list[int] = tokenizer(tokenizer.bos_token, add_special_tokens=False)["input_ids"]
    labels = [IGNORE_INDEX] * len(ids)
    for m in messages:
        if m["role"] == "assistant":
            pieces = [(ROLE_TOKENS["assistant"], False), (m["content"] + END, True), ("\n", False)]
        else:
            pieces = [(f"{ROLE_TOKENS[m['role']]}{m['content']}{END}\n", False)]
        for text, trained in pieces:
            piece = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += piece
            labels += piece if trained else [IGNORE_INDEX] * len(piece)
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}  # (T,), (T,)


def hf_assistant_mask(messages: list[dict], tokenizer) -> dict[str, torch.Tensor]:
    """Hugging Face's ids and assistant mask (T,) for the same chat, from the template's {% generation %} block."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)  # fmt: skip
    return {"input_ids": torch.tensor(out["input_ids"]), "mask": torch.tensor(out["assistant_masks"]).bool()}
