"""Chat templates, in one place: where the culture persona goes, where an answer ends, and the
shipped training templates.

The persona is the system message. One policy for a chat template that has no system role (it
raises on a system message, or drops it): the persona goes to the top of the first user turn,
separated by a blank line, with a warning, in evaluation (lm-eval tasks), in the data builder and
in every backend alike; if the rendered prompt still lacks it, that is an error. A persona is
never dropped silently.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError

logger = logging.getLogger(__name__)

PERSONA_SEPARATOR = "\n\n"
"""Between the persona and the question when the persona cannot be a system message."""

SHIPPED_TEMPLATES: tuple[str, ...] = ("chatml", "llama3")
"""Training templates shipped in `culturespa/inference/templates/` (answer marked for the loss)."""

_PROBE = "culturespa-system-role-probe"


def system_role_supported(tokenizer, chat_template: str | None = None) -> bool:
    """Whether the chat template renders a system message (neither raising nor dropping it)."""
    messages = [{"role": "system", "content": _PROBE}, {"role": "user", "content": "hi"}]
    try:
        text = tokenizer.apply_chat_template(
            messages, chat_template=chat_template, tokenize=False, add_generation_prompt=True
        )
    except Exception:  # jinja raises its own types for an unsupported role
        return False
    return isinstance(text, str) and _PROBE in text


def persona_in_user_turn(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation with its system message moved to the top of the first user turn."""
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return rest
    for turn in rest:
        if turn["role"] == "user":
            turn["content"] = f"{system}{PERSONA_SEPARATOR}{turn['content']}"
            return rest
    return [{"role": "user", "content": system}, *rest]


def place_persona(messages: list[dict[str, str]], system_role: bool) -> list[dict[str, str]]:
    """The conversation as the model will see it under the policy above."""
    if system_role or not any(m["role"] == "system" for m in messages):
        return messages
    return persona_in_user_turn(messages)


NO_SYSTEM_ROLE_WARNING = (
    "the chat template has no system role; the persona is put at the top of the user turn instead"
)


def require_system_role(tokenizer, where: str) -> None:
    """Fail unless the chat template renders a system message (a checkpoint culturespa ships)."""
    if not getattr(tokenizer, "chat_template", None):
        raise CulturespaError(f"{where}: the tokenizer has no chat template")
    if not system_role_supported(tokenizer):
        raise CulturespaError(f"{where}: the chat template rejects or drops the system message")


def rendered_text(ctx: Any) -> str:
    """The text of a rendered prompt: a string, lm-eval's JsonChatStr, or a list of messages."""
    if isinstance(ctx, str):
        return ctx
    if hasattr(ctx, "prompt"):
        return ctx.prompt
    return json.dumps(ctx, ensure_ascii=False)


def persona_kept(ctx: Any, system: str) -> bool:
    """Whether the system text survived the chat template (plain or JSON-escaped)."""
    text = rendered_text(ctx)
    needle = system.strip()
    return needle in text or json.dumps(needle, ensure_ascii=False)[1:-1] in text


def answer_frame(
    messages: list[dict[str, str]], ctx: str, probe: str, chat_template: Any
) -> tuple[str, str] | None:
    """(text before, text after) an answer in the assistant turn, from the model's chat template.

    `chat_template` is the bound `apply_chat_template` of the lm-eval model; its tokenizer renders
    the conversation with a finished assistant turn holding `probe`. None if that cannot be done.
    """
    lm = getattr(chat_template, "__self__", None)
    tokenizer = getattr(lm, "tokenizer", None)
    if not isinstance(ctx, str) or not hasattr(tokenizer, "apply_chat_template"):
        return None
    options: dict[str, Any] = {}
    if getattr(lm, "hf_chat_template", None):  # vllm keeps the template and thinking flag apart
        options["chat_template"] = lm.hf_chat_template
    if getattr(lm, "enable_thinking", None) is not None:
        options["enable_thinking"] = lm.enable_thinking
    options.update(getattr(lm, "chat_template_args", None) or {})
    try:
        full = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": probe}],
            tokenize=False,
            add_generation_prompt=False,
            **options,
        )
    except Exception:  # any template failure means: use the fallback
        return None
    if not isinstance(full, str) or not full.startswith(ctx):
        return None
    rest = full[len(ctx) :]
    body = rest.lstrip()
    if not body.startswith(probe):
        return None
    end = body[len(probe) :].rstrip()
    if not end:
        return None
    return rest[: len(rest) - len(body)], end


def training_template_path(name_or_path: str) -> Path:
    """A shipped template name ('llama3') or a .jinja path -> the template file."""
    if name_or_path in SHIPPED_TEMPLATES:
        return Path(
            str(
                resources.files("culturespa.inference").joinpath(
                    "templates", f"{name_or_path}.jinja"
                )
            )
        )
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise CulturespaError(
            f"chat_template: {name_or_path!r} is neither a shipped template "
            f"({', '.join(SHIPPED_TEMPLATES)}) nor a file"
        )
    return path


def read_training_template(name_or_path: str) -> str:
    """The text of a training chat template; it must mark the answer with `{% generation %}`."""
    path = training_template_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    if "generation" not in text or "endgeneration" not in text:
        raise CulturespaError(
            f"{path}: no {{% generation %}} markers, so no assistant-only loss mask"
        )
    return text
