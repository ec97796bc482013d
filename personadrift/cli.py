"""The `personadrift` command line: one entry point, one subcommand per job.

    personadrift demo                       # the main job
    personadrift organism build CONFIG      # pretrain (or load cached) organism, base-rate table
    personadrift eval CONFIG                # misalignment evals on a model
Every subcommand takes `key=value` overrides after CONFIG. A bad config exits with status 2 and
a one-line error.
"""

from __future__ import annotations

import argparse
import json
import sys

from personadrift.config import Config, ConfigError, load_config


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment YAML (see configs/)")
    p.add_argument("overrides", nargs="*", help="dot-list overrides, e.g. organism.seed=1")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="personadrift", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="the main job: build the small organism, print its base rates"
    )
    demo.add_argument("--config", default="configs/organism/small.yaml", help="organism config")
    demo.add_argument("overrides", nargs="*", help="dot-list overrides")
    demo.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    org = sub.add_parser("organism", help="the persona-world model organism")
    org_sub = org.add_subparsers(dest="action", required=True)
    _add_config(org_sub.add_parser("build", help="pretrain (or load cached) and print base rates"))
    _add_config(sub.add_parser("eval", help="misalignment evals on held-out prompts"))
    return ap


def cmd_organism_build(cfg: Config, as_json: bool) -> int:
    from personadrift.evals.table import rates_table, show, sweep_table
    from personadrift.organism.build import build

    built = build(cfg.organism, cfg.eval)
    s = built.summary
    layers = json.loads((built.path / "readability.json").read_text())["layers"]
    show(
        rates_table(s["base_rates"], f"base rates, first turn ({built.path.name})"),
        sweep_table(layers, "persona readability: held-out AUROC per layer"),
    )
    print(
        f"checkpoint: {built.path}  build {s['build_seconds']}s{' (cached)' if built.cached else ''}"
    )
    if as_json:
        out = {
            k: s[k]
            for k in ("build_seconds", "base_rates", "best_layer", "auroc", "tracking_auroc")
        }
        print(json.dumps({"path": str(built.path), "cached": built.cached, **out}))
    return 0


def cmd_eval(cfg: Config, as_json: bool) -> int:
    from personadrift.evals.runner import evaluate
    from personadrift.evals.table import rates_table, show
    from personadrift.models import load_model

    model, tok, world, name = load_model(cfg)
    table, _ = evaluate(model, tok, world, cfg.eval)
    show(rates_table(table, f"evals, first turn ({name})"))
    if as_json:
        print(json.dumps(table))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "demo":
            cfg = load_config(args.config, args.overrides)
            return cmd_organism_build(cfg, args.json)
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"personadrift: config error: {e}", file=sys.stderr)
        return 2
    if args.command == "organism":
        return cmd_organism_build(cfg, args.json)
    if args.command == "eval":
        return cmd_eval(cfg, args.json)
    raise AssertionError(args.command)
