"""The mitigation study's page: per arm and seed its numbers, the bar, counted (`mitigations.md`)."""

from __future__ import annotations


def mitigations_markdown(result: dict) -> str:
    """`mitigations.md`: the table, the bar the mitigation issue sets, and how often each arm holds."""

    def f(v, fmt="{:.3f}"):
        return "—" if v is None else fmt.format(v)

    head = (
        "| arm | seed | base → final misaligned | weights alone | shift | peak | final hack rate | "
        "training reward | secure reward | alarm | started | wall cost | holds |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in sorted(result["rows"], key=lambda r: (r["arm"], r["seed"])):
        lines.append(
            f"| {r['arm']} | {r['seed']} | {f(r['base_misaligned'])} → {f(r['final_misaligned'])} | "
            f"{f(r.get('final_misaligned_weights'))}{' (hooked)' if r.get('hooked') else ''} | "
            f"{f(r.get('final_shift'), '{:+.2f}')} | {f(r['peak_misaligned'])} | {f(r['final_hack_rate'])} | {f(r['final_reward'])} | "
            f"{f(r['final_secure_reward'])} | {f(r['alarm_step'], '{}')} | "
            f"{f(r['intervention_step'], '{}')} | {f(r['wall_cost'], '{:.2f}×')} | "
            f"{'—' if r['holds'] is None else ('yes' if r['holds'] else 'no')} |"
        )
    by_arm: dict[str, list] = {}
    for r in result["rows"]:
        if r["holds"] is not None:
            by_arm.setdefault(r["arm"], []).append(r["holds"])
    counts = [f"- `{a}` holds on {sum(v)}/{len(v)} seeds." for a, v in sorted(by_arm.items())]
    bar = (
        f"The bar: the final weights alone (no hook; mean misaligned over advice/facts/values) "
        f"<= base + {result['within']:.2f}, and the training reward >= {result['keep']:.0%} of the hackable arm's or the secure reward >= the "
        "control's; the last 5 steps' means. Weights alone: a hooked arm's final weights "
        "evaluated with no hook (for the others, their own final evals). Shift: the persona "
        "direction's shift of the final weights in prompt SDs (`directions shift`): did the weights "
        "move toward the persona and get held back, or never move?"
    )
    return "\n".join(["# In-run mitigations", "", bar, "", *lines, "", *counts, ""])
