"""Evaluate culture-specific adapters, each on its own country's WVS task, as one run.

```bash
python recipes/eval_specific.py runs/train/llama3-8b-instruct_culture_specific \
    --task wvs_gen_culture_aware --output-path runs/eval
culturespa report runs/eval -o runs/report
```
Reads <train output_dir>/adapters.json (written by recipes/sft.py --countries) and runs
`culturespa eval --peft <adapter> --tasks <task>_<iso3>` per country. The adapter folders end in
the country code, so `culturespa report` merges them into one row ("... + .../{CC}").
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from culturespa.cli.parsing import ArgumentParser, batch_size, exit_with_error, positive_int

    parser = ArgumentParser(prog="recipes/eval_specific.py", description=__doc__.splitlines()[0])
    parser.add_argument("adapters", help="training output_dir holding adapters.json")
    parser.add_argument(
        "--task",
        default="wvs_gen_culture_aware",
        help="task family; the country suffix is added (default: %(default)s)",
    )
    parser.add_argument(
        "--output-path", default="runs/eval", help="results folder (default: %(default)s)"
    )
    parser.add_argument("--model", default=None, help="base model (default: from adapters.json)")
    parser.add_argument(
        "--backend", default="hf", choices=("hf", "vllm"), help="lm-eval model type: hf or vllm"
    )
    parser.add_argument("--batch-size", type=batch_size, default=1, help="batch size or 'auto'")
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="items per task (testing only)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda if present)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    from culturespa.atomic import check_output_dir
    from culturespa.errors import CulturespaError
    from culturespa.training import evaluate_culture_specific

    try:
        check_output_dir(args.output_path, "--output-path")
        results = evaluate_culture_specific(
            args.adapters,
            args.task,
            args.output_path,
            model=args.model,
            backend=args.backend,
            batch_size=args.batch_size,
            limit=args.limit,
            device=args.device,
            seed=args.seed,
        )
    except CulturespaError as exc:
        return exit_with_error(parser.prog, str(exc))
    for code, result in results.items():
        for task, metrics in result.get("results", {}).items():
            print(f"{code} {task} alignment={metrics.get('alignment,none')}")
    print(f"results written under {args.output_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
