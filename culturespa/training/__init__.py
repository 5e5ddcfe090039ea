"""LoRA fine-tuning with TRL (third layer), behind `culturespa train` and `culturespa merge`:
`arguments`, `data`, `loss_mask` (assistant-only loss checks), `trainer` (one adapter or one per
country), `outputs` (model card from `model_card.md.jinja`, run record, adapter index), `merge`
(an adapter into its base weights)."""
