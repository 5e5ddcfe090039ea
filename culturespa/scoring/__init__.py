"""Scoring (bottom layer, beside `survey` and `prompts`): the paper's score and its parser,
distributional scores, bootstrap intervals, per-country scores, reply files, steerability.

Modules: `alignment` (the formula, a leaf), `answers` (the parser; answers next to majorities),
`distributions` (W1, JSD, majority match), `bootstrap` (paired intervals), `country_scores`,
`replies` (the paper's release format), `steerability` (persona vs no persona), `baselines`
(answer rules that need no model, scored from the survey alone), `debiasing` (permuted orders
and calibration: option distributions with place and label taken out).
"""
