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

import logging
import sys
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError
from culturespa.prompts.task_names import task_of_group
from culturespa.training.outputs import read_adapter_index

logger = logging.getLogger("recipes.eval_specific")


def evaluate_culture_specific(
    index_path: str | Path,
    task: str,
    output_path: str | Path,
    model: str | None = None,
    countries: tuple[str, ...] | None = None,
    **eval_kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """Evaluate each country's adapter (or those of `countries` only) on its country's task of
    the group `task`, one results file each. The adapter folders end in the country code, so
    `culturespa report` shows them as one row."""
    from culturespa.evaluation.run import run_evaluation

    base, adapters = read_adapter_index(index_path)
    if countries is not None:
        missing = [c for c in countries if c not in adapters]
        if missing:
            raise CulturespaError(
                f"{index_path}: no adapter for {', '.join(missing)}; it holds {', '.join(adapters)}"
            )
        adapters = {c: adapters[c] for c in countries}
    base = model or base
    if not base:
        raise CulturespaError(f"{index_path}: no base_model; pass the base model")
    results = {}
    for code, adapter in adapters.items():
        country_task = task_of_group(task, code)
        logger.info("evaluating %s adapter %s on %s", code, adapter, country_task)
        results[code] = run_evaluation(
            model=base,
            tasks=country_task,
            peft=adapter,
            output_path=output_path,
            **eval_kwargs,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    from culturespa.cli.survey import add_survey_option, use_survey_option
    from culturespa.command_line import (
        ArgumentParser,
        batch_size,
        exit_with_error,
        positive_int,
        seed,
    )

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
        "--countries",
        default=None,
        help="only these countries' adapters, ISO-3 codes (USA,CHN); default: all in adapters.json",
    )
    parser.add_argument(
        "--backend",
        default="hf",
        choices=("hf", "vllm", "culturespa-hf"),
        help="lm-eval model type: hf, vllm or culturespa-hf (hf with a shared-prefix cache)",
    )
    parser.add_argument(
        "--log-samples", action="store_true", help="also write per-item sample logs (intervals)"
    )
    parser.add_argument("--batch-size", type=batch_size, default=1, help="batch size or 'auto'")
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="items per task (testing only)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda if present)")
    parser.add_argument("--seed", type=seed, default=42)
    add_survey_option(parser, "a survey folder from `culturespa survey build`: its tasks are run")
    args = parser.parse_args(argv)

    from culturespa.atomic import check_output_dir
    from culturespa.evaluation.survey_tasks import survey_task_folder
    from culturespa.survey.countries import parse_countries

    try:
        use_survey_option(args)
        countries = parse_countries(args.countries) if args.countries else None
        check_output_dir(args.output_path, "--output-path")
        with survey_task_folder(args.survey) as task_folder:
            results = evaluate_culture_specific(
                args.adapters,
                args.task,
                args.output_path,
                model=args.model,
                countries=countries,
                backend=args.backend,
                log_samples=args.log_samples,
                batch_size=args.batch_size,
                limit=args.limit,
                device=args.device,
                seed=args.seed,
                task_folder=task_folder,
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
