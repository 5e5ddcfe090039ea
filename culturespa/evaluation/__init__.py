"""Evaluation with lm-eval (third layer): `tasks` (the task folder, globs, groups), `model_args`,
`dedup` (identical requests sent once), `run` (one lm-eval run per seed, written aside),
`intervals`, `demo` (the main job)."""
