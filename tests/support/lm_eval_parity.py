"""`culturespa-hf` against lm-eval's `hf` model: the same items scored by both, and the rule by
which their answers agree. Used by tests/test_lm_eval_hf.py and scripts/gpu_check.py."""

from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ["wvs_culture_aware_usa", "wvs_cct_self_alignment_chn"]
SAMPLES = [0, 1, 2, 3, 4, 5, 6, 7, 47]
"""Plain and self-alignment items; 47 is a 10-option item."""

TOLERANCE = {"float32": 1e-4, "bfloat16": 0.2}
"""Largest log-likelihood difference allowed per dtype. bfloat16: lm-eval takes the log-softmax
of bf16 logits in bf16, so its log-likelihoods come in bf16 steps (0.125 around -20), while
culturespa-hf takes it in float32; the two agree within about one such step."""


def loglikelihoods(model_dir, tasks=TASKS, samples=SAMPLES, device="cpu", **model_kwargs):
    """{lm-eval's HFLM: ..., CulturespaHFLM: ...}, each {(task, doc_id): [(loglik, greedy), ...]}."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from culturespa.evaluation.tasks import task_manager
    from culturespa.inference.lm_eval_model import CulturespaHFLM

    got = {}
    for cls in (HFLM, CulturespaHFLM):
        lm = cls(pretrained=str(model_dir), batch_size=3, device=device, **model_kwargs)
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=tasks,
            task_manager=task_manager(),
            samples={t: samples for t in tasks},
            log_samples=True,
            apply_chat_template=True,
        )
        got[cls.__name__] = {
            (t, s["doc_id"]): [tuple(r[0]) for r in s["resps"]]
            for t in tasks
            for s in out["samples"][t]
        }
        del lm
    return got["HFLM"], got["CulturespaHFLM"]


@dataclass
class Parity:
    """How lm-eval's answers and ours compare on the same items."""

    items: int = 0
    decided: int = 0
    """Items where lm-eval's best option leads the next by more than the tolerance."""
    largest_difference: float = 0.0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.items} items, same answer on all {self.decided} decided ones, log-likelihoods "
            f"within {self.largest_difference:.3g}"
        )


def compare(stock: dict, ours: dict, tolerance: float, same_greedy: bool) -> Parity:
    """The rule: every log-likelihood within `tolerance`; where lm-eval's best option leads by
    more than the tolerance the answers are the same; where its rounding ties two options (its
    argmax then takes the first), our answer is one of the tied options. `same_greedy`: the
    is-greedy flags must match too (float32)."""
    parity = Parity(items=len(stock))
    if stock.keys() != ours.keys():
        parity.problems.append(f"different items: {sorted(stock.keys() ^ ours.keys())[:3]}")
        return parity
    for key, rows in stock.items():
        if len(rows) != len(ours[key]):
            parity.problems.append(f"{key}: {len(rows)} options against {len(ours[key])}")
            continue
        theirs = [ll for ll, _ in rows]
        mine = [ll for ll, _ in ours[key]]
        best = max(theirs)
        our_choice = max(range(len(mine)), key=mine.__getitem__)
        runner_up = max(v for i, v in enumerate(theirs) if i != theirs.index(best))
        if best - runner_up > tolerance:
            parity.decided += 1
            if our_choice != theirs.index(best):
                parity.problems.append(
                    f"{key}: answer {our_choice}, lm-eval's {theirs.index(best)}"
                )
        elif theirs[our_choice] < best - tolerance:
            parity.problems.append(f"{key}: answer {our_choice} is not among lm-eval's tied best")
        for (ll, greedy), (ll2, greedy2) in zip(rows, ours[key]):
            parity.largest_difference = max(parity.largest_difference, abs(ll - ll2))
            if abs(ll - ll2) > tolerance:
                parity.problems.append(f"{key}: log-likelihood {ll2} against {ll}")
            if same_greedy and greedy != greedy2:
                parity.problems.append(f"{key}: is-greedy {greedy2} against {greedy}")
    return parity
