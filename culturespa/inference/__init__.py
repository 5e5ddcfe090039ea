"""Inference: running a model on prompts (second layer).

`models` (what a model name means, the device), `default_model` (the embedded SmolLM2),
`chat_templates` (the one place for chat templates and the persona policy), `option_scoring`
and `generation_prefix` (shared-prefix work on transformers), `lm_eval_model` (the
`culturespa-hf` lm-eval backend), `backends` (transformers, vLLM, OpenAI-compatible HTTP behind
one interface, for the data builder).
"""
