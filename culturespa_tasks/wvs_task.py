"""The lm-eval task class of the WVS tasks: persona kept in the prompt, option numbers scored whole.

Two things the stock `ConfigurableTask` does not do, and why (see docs/tasks.md):

- The persona is the system message. lm-eval's hf backend drops a system message that the chat
  template rejects, with only a warning; here the rendered prompt is checked, and if the persona is
  missing it is moved to the top of the user turn (logged), or the run stops.
- An option number is scored together with the end of the answer: "1<|im_end|>" against
  "10<|im_end|>", so with a digit-splitting tokenizer "10" does not lose to "1" for being longer.
  The end of the answer is read off the model's own chat template; without a chat template it is a
  newline.
"""

from __future__ import annotations

import logging
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from culturespa.errors import CulturespaError
from culturespa.inference.chat_templates import (
    NO_SYSTEM_ROLE_WARNING,
    PERSONA_SEPARATOR,
    answer_frame,
    persona_in_user_turn,
    persona_kept,
)

logger = logging.getLogger(__name__)

PLAIN_TEXT_SEPARATOR = PERSONA_SEPARATOR
"""Between the persona and the question when no chat template is applied."""
PLAIN_TEXT_ANSWER_END = "\n"
"""What closes the answer when no chat template is applied."""


class WVSTask(ConfigurableTask):
    """A WVS task (log-likelihood over the option numbers shown, or generation: a sampled reply
    or a stated distribution)."""

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        self._messages: dict[str, list[dict[str, str]]] = {}
        self._contexts: dict[str, list[Any]] = {}
        self._warned: set[str] = set()
        super().__init__(config=config, **kwargs)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("%s: %s", self.config.task, message)

    def fewshot_context(
        self,
        doc: dict,
        num_fewshot: int,
        system_instruction: str | None = None,
        apply_chat_template: bool = False,
        fewshot_as_multiturn: bool = False,
        chat_template: Any = None,
        gen_prefix: str | None = None,
    ) -> Any:
        """The prompt: persona as system message (chat) or as the first paragraph (plain text).

        A doc asked with several user turns (`users`: the permuted and calibrated ways) gets one
        prompt per turn, kept for `construct_requests`; the first is returned."""
        if num_fewshot:
            raise CulturespaError(f"{self.config.task} is zero-shot; drop --num_fewshot")
        description = self.resolve_field(doc, self.config.description) or ""
        system = PLAIN_TEXT_SEPARATOR.join(p for p in (system_instruction, description) if p)
        template = chat_template if apply_chat_template else None
        users = doc["users"] if "users" in doc else [self.doc_to_text(doc)]
        contexts = [self._context(doc, system, user, template) for user in reversed(users)][::-1]
        if "users" in doc:
            self._contexts[doc["qid"]] = contexts
        return contexts[0]

    def _context(self, doc: dict, system: str, user: str, chat_template: Any) -> Any:
        """One prompt of a doc (chat, if a chat template is given; else plain text); the first
        prompt's messages are built last and kept for reading the answer's frame."""
        if not chat_template:
            return f"{system}{PLAIN_TEXT_SEPARATOR}{user}" if system else user
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        ctx = chat_template(messages)
        if system and not persona_kept(ctx, system):
            self._warn_once("system", NO_SYSTEM_ROLE_WARNING)
            messages = persona_in_user_turn(messages)
            ctx = chat_template(messages)
            if not persona_kept(ctx, system):
                raise CulturespaError(
                    f"{self.config.task}: the chat template drops the persona from the prompt"
                )
        self._messages[doc["qid"]] = messages
        return ctx

    def _choice_frame(self, doc: dict, ctx: Any, chat_template: Any) -> tuple[str, str]:
        """(delimiter, answer end) around an option number in the scored continuation."""
        if chat_template is None:
            return self.config.target_delimiter, PLAIN_TEXT_ANSWER_END
        probe = self.doc_to_choice(doc)[0]
        frame = answer_frame(self._messages.get(doc["qid"], []), ctx, probe, chat_template)
        if frame is not None:
            return frame
        lm = getattr(chat_template, "__self__", None)
        eos = getattr(getattr(lm, "tokenizer", None), "eos_token", None)
        if not eos:
            raise CulturespaError(
                f"{self.config.task}: cannot tell how the chat template ends an answer, and the "
                "tokenizer has no EOS token; run without --apply_chat_template"
            )
        self._warn_once(
            "frame", f"cannot read the end of an answer off the chat template; using EOS {eos!r}"
        )
        return "", eos

    def construct_requests(self, doc: dict, ctx: Any, **kwargs: Any) -> Any:
        """Log-likelihood requests "<number><end of answer>", one per option (and per prompt of a
        doc asked with several, prompt by prompt); else lm-eval's own."""
        apply_chat_template = kwargs.pop("apply_chat_template", False)
        chat_template = kwargs.pop("chat_template", None)
        if self.OUTPUT_TYPE != "multiple_choice":
            return super().construct_requests(
                doc,
                ctx,
                apply_chat_template=apply_chat_template,
                chat_template=chat_template,
                **kwargs,
            )
        lead, end = self._choice_frame(doc, ctx, chat_template if apply_chat_template else None)
        contexts = self._contexts.get(doc["qid"]) if "users" in doc else [ctx]
        if not contexts or contexts[0] != ctx:
            raise CulturespaError(f"{self.config.task}: no prompts built for item {doc['qid']}")
        choices = self.doc_to_choice(doc)
        return [
            Instance(
                request_type="loglikelihood",
                doc=doc,
                arguments=(context, f"{lead}{number}{end}"),
                idx=p * len(choices) + i,
                **kwargs,
            )
            for p, context in enumerate(contexts)
            for i, number in enumerate(choices)
        ]
