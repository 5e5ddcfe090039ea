"""CultureSPA end to end on one model: build data -> train LoRA adapters -> evaluate -> report,
as separate commands, resumable and seeded: `culturespa loop --config default|tiny|demo` (`make
loop`, `make smoke`, `culturespa demo`), `recipes/loop.py`.

- `config`: the loop's YAML config, the run folder's settings record, the derived build-data config
- `layout`: where each stage writes in the run folder, and when its output is complete
- `commands`: running one stage's command (wall time, CPU time, peak memory) and the timings file
- `estimates`: the time estimate printed before each stage
- `stages`: the four stages, each skipped when its output is complete
- `summary`: the report, the loss curves and `summary.md` (the paper's table shape)
- `compare`: two run folders' data and adapters, file by file (the determinism check)
- `main`: `culturespa loop` and `recipes/loop.py` (one parser), and `run_loop`, the one chain
"""
