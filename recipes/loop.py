"""CultureSPA end to end on one model and a CPU: build data -> train LoRA adapters -> evaluate -> report.

The same command as `culturespa loop` (one parser: `culturespa.loop.main.make_parser`).

```bash
make loop        # = culturespa loop --config default
python recipes/loop.py --config recipes/loop/default.yaml   # the same, from a clone
# a small run in minutes: 4 kept questions per topic, 20 WVS items per country
culturespa loop --config default --per-topic 4 --limit 20 --output-dir runs/loop/small
culturespa loop --config default --dry-run   # the plan
culturespa loop --config tiny --output-dir runs/smoke/tiny   # make smoke: the tiny random model
# determinism: the data and the adapters of two run folders, file by file
culturespa loop --compare runs/loop/a runs/loop/b
```

Stages, each a command of its own (their progress bars show), each skipped when its outputs are
complete, so the same command run again after a kill continues where it stopped:

1. data: `culturespa build-data` on the config the loop derives from `data_config` (the model,
   countries, seed and `filter.per_topic` of the loop), resumable by itself; complete when
   `data/sft/README.md` (written last) exists.
2. culture-joint adapter: `culturespa train --config <joint_recipe>`; complete when
   `train/culture_joint/culturespa_training.json` (written last) exists, else trained afresh.
3. culture-specific adapters: `culturespa train --config <specific_recipe> --countries <C>`, one
   process per country, each skipped when complete; a country without rows is reported and left out.
4. evaluation: `culturespa eval` (base model, joint adapter) and `culturespa eval --adapters`
   (per country) on the config's task groups, with sample logs (intervals); each results folder
   is skipped when it holds a results file.
5. report: `culturespa report`'s tables and plots (base vs joint bars, paired change), the
   training loss curves from the adapters' `trainer_state.json`, and `summary.md`: the table
   with intervals, the paired changes, pairs per country, and per stage the wall time, CPU time
   and peak memory (`loop_timings.json`).

Every stage gets the loop's seed; the run folder's `loop.json` holds the settings, and a rerun
with other settings into a folder that holds results is refused.
"""

from __future__ import annotations

import sys

from culturespa.loop.main import main

if __name__ == "__main__":
    sys.exit(main(prog="recipes/loop.py"))
