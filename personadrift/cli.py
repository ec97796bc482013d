"""The `personadrift` command line: one entry point, one subcommand per job.

    personadrift demo                       # the main job
    personadrift organism build CONFIG      # pretrain (or load cached) organism, base-rate table
    personadrift organism readability CONFIG   # its persona readability again (covert docs too)
    personadrift eval CONFIG                # misalignment evals on a model
    personadrift train CONFIG [--resume RUN_DIR]   # GRPO with online persona probes
    personadrift watch RUN_DIR              # live terminal curves of a run
    personadrift report RUN_DIR [RUN_DIR ...] [--out DIR]   # plots + report.md/.html (./report)
    personadrift realign RUN_DIR            # SFT the run's final model on benign samples, evals again
    personadrift directions extract CONFIG  # persona directions, layer sweep, saved
    personadrift directions steer-sweep CONFIG [--run RUN_DIR]   # the layer to steer at
    personadrift directions shift RUN_DIR ... [--also PATH]      # runs x directions moved
    personadrift configs                    # the shipped configs, by their short names
    personadrift results publish JSON NAME  # a study's --json output -> docs/results/NAME.json + .md
    personadrift envs list                  # environments and their loopholes
    personadrift envs try ENV [CONFIG]      # a few prompts, the model's answers, their labels
    personadrift diff RUN_DIR [--layer L]   # SAE model diffing: which latents the run turned on
    personadrift study warning [--seeds 0,1,2,3,4] [--alpha 0.1]   # calibrated early warning
    personadrift study mitigations --calibration DIR [--seeds 0,1,2] [--step0]   # in-run mitigations
Every subcommand takes `key=value` overrides after CONFIG. A bad config exits with status 2 and
a one-line error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from personadrift.checks import check, check_questions, load_checked, ready_judge
from personadrift.config import CONFIG_FOLDERS, Config, ConfigError, find_config


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment YAML (see configs/)")
    p.add_argument("overrides", nargs="*", help="dot-list overrides, e.g. organism.seed=1")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="personadrift", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    groups = (add_demo, add_study, add_runs, add_directions, add_diff, add_configs, add_results)
    for add in (*groups, add_envs):
        add(sub)
    return ap


def add_demo(sub) -> None:
    demo = sub.add_parser(
        "demo", help="the main job: hackable vs control vs intervention runs, report, per seed"
    )
    demo.add_argument(
        "--seeds", default="0", help="comma-separated seeds (organism and RL), e.g. 1,2,3"
    )
    demo.add_argument("--out", default="", help="demo folder (default: runs/demo-<time>)")
    demo.add_argument(
        "--parallel", type=int, default=3, help="runs trained at once (1 thread each)"
    )
    demo.add_argument("overrides", nargs="*", help="dot-list overrides applied to every arm")
    demo.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def add_runs(sub) -> None:
    """organism build, eval, train, realign, watch, report."""
    org = sub.add_parser("organism", help="the persona-world model organism")
    org_sub = org.add_subparsers(dest="action", required=True)
    _add_config(org_sub.add_parser("build", help="pretrain (or load cached) and print base rates"))
    _add_config(
        org_sub.add_parser(
            "readability",
            help="the persona's per-layer AUROC measured again on a build (covert documents too)",
        )
    )
    _add_config(sub.add_parser("eval", help="misalignment evals on held-out prompts"))
    tr = sub.add_parser("train", help="GRPO in an env with online probes and evals")
    _add_config(tr)
    tr.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    ra = sub.add_parser("realign", help="SFT a run's final model on benign samples, evals again")
    ra.add_argument("run_dir", help="a run directory (or a model folder)")
    ra.add_argument("overrides", nargs="*", help="dot-list overrides of the run's config.yaml")
    ra.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    w = sub.add_parser("watch", help="live curves of a running or finished run")
    w.add_argument("run_dir")
    w.add_argument("--once", action="store_true", help="print once and exit")
    rep = sub.add_parser("report", help="plots, summary table, report.md/.html of runs")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories to compare")
    rep.add_argument("--out", default="report", help="folder to write into (default: ./report)")


def add_directions(sub) -> None:
    dirs = sub.add_parser("directions", help="persona directions")
    dirs_sub = dirs.add_subparsers(dest="action", required=True)
    ex = dirs_sub.add_parser("extract", help="extract, sweep layers, save the chosen direction")
    _add_config(ex)
    ex.add_argument(
        "--out", default="", help="folder to save into (default: runs/directions-<name>)"
    )
    sw = dirs_sub.add_parser(
        "steer-sweep", help="per layer and coefficient: misalignment removed vs task reward lost"
    )
    _add_config(sw)
    sw.add_argument("--run", default="", help="a run directory: steer its last checkpoint")
    sw.add_argument("--coeffs", default="0.5,1,2", help="coefficients (x median residual norm)")
    sw.add_argument("--n", type=int, default=200, help="answers per family and code problems")
    sw.add_argument("--out", default="", help="folder (default: runs/steer-sweep-<time>)")
    sh = dirs_sub.add_parser("shift", help="runs x directions: how far each run moved each one")
    sh.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished runs")
    sh.add_argument(
        "--also", action="append", default=[], help="another direction (.json; {seed} = the run's)"
    )
    sh.add_argument("--no-random", action="store_true", help="leave out the random direction")
    sh.add_argument(
        "--null",
        type=int,
        default=20,
        help="random directions whose largest |shift| is the run's null band (0: none)",
    )
    sh.add_argument(
        "--null-run",
        action="append",
        default=[],
        metavar="RUN_DIR",
        help="a run that trains on no signal (env.reward=coin): each direction's band among them",
    )
    sh.add_argument("--step", type=int, help="read each run's checkpoint of step N (default: last)")
    sh.add_argument("--plot", metavar="PNG", help="draw every run's shifts against the bands")
    sh.add_argument("--json", action="store_true", help="print one JSON list as the last line")


def add_diff(sub) -> None:
    df = sub.add_parser("diff", help="SAE model diffing: latents the run turned on, no labels")
    df.add_argument(
        "run_dir", help="a run directory (its last checkpoint, or --step, against the base)"
    )
    df.add_argument("overrides", nargs="*", help="dot-list overrides of the run's config.yaml")
    df.add_argument("--base", default="", help="base model folder (default: the run's model)")
    df.add_argument("--layer", type=int, default=0, help="layer (default: the direction's)")
    df.add_argument("--top", type=int, default=10, help="latents to show")
    df.add_argument("--step", type=int, help="diff the run's checkpoint of step N (default: last)")
    df.add_argument(
        "--position",
        default="assistant",
        choices=("assistant", "answer"),
        help="where latents are compared: the Assistant: token, or the model's own answers",
    )
    df.add_argument("--n", type=int, default=100, help="held-out prompts per family")
    df.add_argument("--latents", type=int, default=1024, help="SAE width")
    df.add_argument("--k", type=int, default=16, help="SAE active latents per token")
    df.add_argument("--steps", type=int, default=1000, help="SAE training steps")
    df.add_argument("--sae-docs", type=int, default=3000, help="unlabelled documents for the SAE")
    df.add_argument(
        "--save-latent",
        default="",
        help="save latent ID (or `combined`: the top latents' joint direction) as a Direction",
    )
    df.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def add_configs(sub) -> None:
    cf = sub.add_parser("configs", help="the shipped configs, by folder, with their short names")
    cf.add_argument(
        "--write-docs",
        metavar="DIR",
        help="write the configs index and the config "
        "reference (docs/configs.md, docs/config-reference.md) into DIR",
    )


def add_results(sub) -> None:
    res = sub.add_parser("results", help="the docs' results pages, generated from committed JSON")
    res_sub = res.add_subparsers(dest="action", required=True)
    pub = res_sub.add_parser("publish", help="commit a study's --json output and render its page")
    pub.add_argument("json_file", help="a study's --json output (demo.json, study JSON)")
    pub.add_argument("name", help="the page's name: docs/results/<name>.json and .md")
    ren = res_sub.add_parser("render", help="render every page from its JSON again")
    for p in (pub, ren):
        p.add_argument("--dir", default="docs/results", help="the results folder")


def add_envs(sub) -> None:
    envs = sub.add_parser("envs", help="hackable reward environments")
    envs_sub = envs.add_subparsers(dest="action", required=True)
    envs_sub.add_parser("list", help="each env with its loophole, one line each")
    tr = envs_sub.add_parser("try", help="sample a model's answers in an env and grade them")
    tr.add_argument("env", help="env name (see `personadrift envs list`)")
    tr.add_argument(
        "config",
        nargs="?",
        default="organisms/small",
        help="model config (a file or a shipped config's name)",
    )
    tr.add_argument("overrides", nargs="*", help="dot-list overrides")
    tr.add_argument("-n", type=int, default=4, help="prompts to show")
    tr.add_argument(
        "--samples", type=int, default=0, help="also grade this many samples and print rates"
    )


def add_study(sub) -> None:
    study = sub.add_parser("study", help="studies over many runs")
    kinds = study.add_subparsers(dest="study", required=True)
    w = kinds.add_parser(
        "warning", help="hackable + null runs per seed, dense ground truth, calibrated monitors"
    )
    w.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds, e.g. 0,1,2,3,4")
    w.add_argument("--alpha", type=float, default=0.1, help="null runs allowed to alarm")
    w.add_argument("--k", type=int, default=2, help="consecutive readings above threshold")
    w.add_argument("--parallel", type=int, default=2, help="runs at once (1 thread each)")
    w.add_argument(
        "--dense-n", type=int, default=300, help="dense evals: answers per family per step"
    )
    w.add_argument(
        "--null",
        default="secure",
        choices=("secure", "learning", "coin"),
        help="null runs: secure (the secure twin), learning (the secure twin on problems the "
        "organism solves) or coin (the hackable env paid by a fair coin)",
    )
    w.add_argument("--out", default="", help="study folder (default: runs/study-warning-<time>)")
    w.add_argument("overrides", nargs="*", help="dot-list overrides applied to every run")
    w.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    m = kinds.add_parser(
        "mitigations",
        help="every in-run mitigation per seed, on the calibrated alarm and at step 0",
    )
    m.add_argument(
        "--calibration",
        required=True,
        help="a `study warning` calibration folder (except_seed<s>.json per seed)",
    )
    m.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    m.add_argument(
        "--only",
        default="screen,advantage,inoculate,steer,steer_rollback",
        help="mitigations to run (also: inoculate_steer, ablate, preventative, inoculate_ablate, "
        "inoculate_preventative, inoculate_advantage)",
    )
    m.add_argument("--step0", action="store_true", help="also each mitigation from step 0")
    m.add_argument("--parallel", type=int, default=2, help="runs at once (1 thread each)")
    m.add_argument("--out", default="", help="folder (default: runs/study-mitigations-<time>)")
    m.add_argument("overrides", nargs="*", help="dot-list overrides applied to every run")
    m.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def parse_seeds(text: str) -> list[int] | None:
    """`--seeds 0,1,2` as integers; None (and one line on stderr) when it is not such a list."""
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        print(f"personadrift: --seeds: not a list of integers: {text!r}", file=sys.stderr)
        return None


def cmd_study(args) -> int:
    from personadrift.experiments import warning as study

    seeds = parse_seeds(args.seeds)
    if seeds is None:
        return 2
    if args.study == "mitigations":
        return cmd_mitigations(args, seeds)
    out = Path(args.out or f"runs/study-warning-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        study.check_inputs(seeds, args.alpha, args.k, args.overrides, args.dense_n, args.null)
        parallel = max(1, args.parallel)
        result = study.run_study(
            seeds,
            out,
            args.overrides,
            args.alpha,
            args.k,
            parallel=parallel,
            dense_n=args.dense_n,
            null=args.null,
        )
    except ConfigError as e:
        print(f"personadrift: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_mitigations(args, seeds: list[int]) -> int:
    from personadrift.experiments import mitigations

    out = Path(args.out or f"runs/study-mitigations-{time.strftime('%Y%m%d-%H%M%S')}")
    names = [m for m in args.only.split(",") if m.strip()]
    try:
        mitigations.check_inputs(seeds, names, Path(args.calibration))
        result = mitigations.run_mitigations(
            seeds,
            names,
            Path(args.calibration),
            out,
            args.overrides,
            step0=args.step0,
            parallel=max(1, args.parallel),
        )
    except ConfigError as e:
        print(f"personadrift: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_directions_extract(cfg: Config, out: str, as_json: bool, judge=None) -> int:
    from personadrift.rl.setup import build_direction, load_policy

    model, tok, world = load_policy(cfg)
    folder = Path(out or Path(cfg.out_dir) / f"directions-{cfg.name}")
    d = build_direction(cfg, model, tok, world, folder, judge=judge)
    print(f"saved {folder / (d.name + '.json')} (layer {d.layer})")
    if as_json:
        print(
            json.dumps(
                {"path": str(folder / f"{d.name}.json"), "layer": d.layer, "auroc": d.meta["auroc"]}
            )
        )
    return 0


def cmd_steer_sweep(cfg: Config, args) -> int:
    from personadrift.analyses.steer_sweep import parse_coeffs, run_sweep

    coeffs = parse_coeffs(args.coeffs)
    out = Path(args.out or Path(cfg.out_dir) / f"steer-sweep-{time.strftime('%Y%m%d-%H%M%S')}")
    result = run_sweep(cfg, args.run, coeffs, args.n, out)
    b = result["best"]
    print(
        "picked: none of the settings removes misalignment"
        if b is None
        else f"picked: layer {b['layer']} coeff {b['coeff']:g} (removes {b['removed']:.3f}, "
        f"reward lost {b['cost']:.3f}, ratio {b['ratio']:.2f}); reading layer {result['reading_layer']}"
    )
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_envs_list() -> int:
    from personadrift.envs import ENVS, make

    for name in ENVS.names():
        env = make(name)
        what = "secure twin: reward = secure grader" if env.secure else env.loophole
        print(f"{name:22s} {what}")
    return 0


def cmd_envs_try(cfg: Config, env_name: str, n: int, samples: int) -> int:
    from personadrift.envs import make
    from personadrift.evals.runner import sample_answers
    from personadrift.models import load_model

    model, tok, world, name = load_model(cfg)
    env = make(env_name, world=world, tokenizer=tok)
    examples = env.examples("eval", max(n, samples), seed=cfg.model_eval.seed)
    answers = sample_answers(
        model,
        tok,
        [e.prompt for e in examples],
        cfg.model_eval.temperature,
        cfg.model_eval.max_new_tokens,
        cfg.model_eval.batch_size,
        cfg.model_eval.seed,
    )
    grades = env.grade_many(examples, answers)
    for e, a, g in list(zip(examples, answers, grades))[:n]:
        print(
            f"\nprompt: {e.text}\nanswer: {a}\n-> {g.label}  reward {g.reward:.2f}  "
            f"secure {g.secure_reward:.2f}  ({g.detail})"
        )
    if samples:
        r = env.batch_metrics(grades[:samples])
        print(
            f"\n{env_name} on {name}, {samples} samples: "
            + "  ".join(f"{k} {v:.3f}" for k, v in r.items())
        )
    return 0


def cmd_configs(write_docs: str | None) -> int:
    from personadrift.config import shipped_configs
    from personadrift.config.reference import question
    from personadrift.config.reference import write_docs as write

    if write_docs:
        for path in write(write_docs):
            print(f"written: {path}")
        return 0
    for folder, paths in shipped_configs().items():
        print(f"{folder}/")
        for p in paths:
            print(f"  {p.stem:36s} {question(p)}")
    return 0


def cmd_results(args) -> int:
    from personadrift.report import pages

    folder = Path(args.dir)
    if args.action == "publish":
        source = Path(args.json_file)
        if not source.is_file():
            raise ConfigError(f"results publish: no such file: {source}")
        try:
            print(f"written: {pages.publish(source, args.name, folder)}")
        except ValueError as e:  # not JSON, or no renderer for it
            raise ConfigError(f"results publish: {source}: {e}") from None
        return 0
    for page, text in pages.render_all(folder).items():
        page.write_text(text)
        print(f"written: {page}")
    return 0


def cmd_organism_build(cfg: Config, as_json: bool) -> int:
    from personadrift.evals.table import rates_table, show, sweep_table
    from personadrift.models import build_organism

    built = build_organism(cfg.organism, cfg.model_eval)
    s = built.summary
    layers = json.loads((built.path / "readability.json").read_text())["layers"]
    show(
        rates_table(s["base_rates"], f"base rates, first turn ({built.path.name})"),
        sweep_table(layers, "persona readability: held-out AUROC per layer"),
    )
    print(
        f"checkpoint: {built.path}  build {s['build_seconds']}s{' (cached)' if built.cached else ''}"
    )
    if built.digest.matches is False:  # said during the build too: again where it is seen
        print(built.digest.message(), file=sys.stderr)
    if as_json:
        out = {
            k: s[k]
            for k in ("build_seconds", "base_rates", "best_layer", "auroc", "tracking_auroc")
        }
        digest = {"weights_digest": built.weights_digest, "digest_matches": built.digest.matches}
        print(json.dumps({"path": str(built.path), "cached": built.cached, **out, **digest}))
    return 0


def cmd_organism_readability(cfg: Config, as_json: bool) -> int:
    """The build's persona readability measured now: the build's own sweep and, in a world whose
    persona hides (`covert_p`), the same directions scored on covert documents alone."""
    import torch

    from personadrift.evals.table import show, sweep_table
    from personadrift.models import build_organism, readability_sweep
    from personadrift.organism.build import load

    built = build_organism(cfg.organism, cfg.model_eval)
    model, tok = load(built.path, getattr(torch, cfg.model.dtype))
    sweep = readability_sweep(model, tok, cfg.organism)
    tables = [sweep_table(sweep["layers"], f"persona readability ({built.path.name})")]
    if "covert" in sweep:
        c = sweep["covert"]
        title = f"covert documents alone ({c['n_answer']} answers, {c['n_pre']} turns >= 2)"
        tables.append(sweep_table(c["layers"], title))
    show(*tables)
    if as_json:
        print(json.dumps({"path": str(built.path), **sweep}))
    return 0


def cmd_eval(cfg: Config, as_json: bool, judge=None) -> int:
    from personadrift.evals.chat import chat_evals, eval_table
    from personadrift.evals.table import rates_table, show
    from personadrift.models import load_model

    model, tok, world, name = load_model(cfg)
    table = eval_table(model, tok, world, cfg.model_eval, chat_evals(cfg, judge))
    show(rates_table(table, f"evals, first turn ({name})"))
    out = Path(cfg.out_dir) / "evals" / f"{Path(name).name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"model": str(name), "eval": dataclasses.asdict(cfg.model_eval), "rates": table},
            indent=2,
        )
    )
    print(f"written: {out}")
    if as_json:
        print(json.dumps(table))
    return 0


def cmd_realign(run_dir: str, overrides: list[str], as_json: bool) -> int:
    from personadrift.evals.table import rates_table, show

    path = Path(run_dir)
    try:
        if not path.is_dir():
            raise ConfigError(f"realign: no such run directory: {path}")
        run_cfg = path / "config.yaml"
        cfg = load_checked(run_cfg if run_cfg.is_file() else None, overrides)
        from personadrift.rl.realign import realign

        result = realign(path, cfg)
    except ConfigError as e:
        print(f"personadrift: {e}", file=sys.stderr)
        return 2
    show(rates_table(result["before"], "before realign"), rates_table(result["after"], "after"))
    if as_json:
        print(json.dumps({"misaligned_mean": result["misaligned_mean"], "sft": result["sft"]}))
    return 0


def cmd_diff(args) -> int:
    from personadrift.analyses.diff import run_diff, save_latent

    path = Path(args.run_dir)
    try:
        if not (path / "config.yaml").is_file():
            raise ConfigError(f"diff: not a run directory (no config.yaml): {path}")
        for name in ("top", "n", "latents", "k", "steps", "sae_docs"):
            if getattr(args, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be at least 1")
        if args.k > args.latents:
            raise ConfigError(f"--k: {args.k} is more than --latents {args.latents}")
        if args.layer < 0:
            raise ConfigError(f"--layer: {args.layer} is not a layer")
        cfg = load_checked(path / "config.yaml", args.overrides)
        if args.save_latent:
            which = args.save_latent
            if which != "combined" and not which.isdigit():
                raise ConfigError(f"--save-latent: {which!r} is not a latent id or `combined`")
            done = sorted((path / "diff").glob("diff-*.json"))
            layer = args.layer or (json.loads(done[0].read_text())["layer"] if done else 1)
            latent = which if which == "combined" else int(which)
            print(f"saved {save_latent(path, cfg, latent, layer)}")
            return 0
        sae_args = {
            "sae_docs": args.sae_docs,
            "n_latents": args.latents,
            "k": args.k,
            "steps": args.steps,
            "seed": cfg.seed,
            "auroc_docs": 200,
            "position": args.position,
        }
        result = run_diff(
            path, cfg, args.base, args.layer, args.top, args.n, sae_args, step=args.step
        )
    except ConfigError as e:
        print(f"personadrift: {e}", file=sys.stderr)
        return 2
    print_diff(result, path)
    if args.json:
        out = {k: result[k] for k in ("layer", "position", "sae")}
        keys = ("id", "delta", "auroc_toxic", "cos_toxic", "auroc_sycophant", "cos_sycophant")
        keys += ("cos_toxic_specific", "cos_sycophant_specific")  # a world of two personas
        keys += ("auroc_toxic_covert",)  # a world whose persona hides
        out["latents"] = [{k: r[k] for k in keys if k in r} for r in result["latents"]]
        out["combined"] = result["combined"]
        print(json.dumps(out))
    return 0


def print_diff(result: dict, path: Path) -> None:
    """The diff's SAE, its top latents with their scores and contexts, the combined direction."""
    s = result["sae"]
    print(
        f"SAE at layer {result['layer']}: {s['n_latents']} latents, k={s['k']}, FVU {s['fvu']:.3f}, "
        f"dead {s['dead_frac']:.3f}, {s['seconds']}s on {s['n_tokens']} tokens"
    )
    where = "at the Assistant: token" if result["position"] == "assistant" else "over the answers"
    print(f"top latents by mean activation change {where} of {', '.join(result['families'])}:")
    for r in result["latents"]:
        scores = "".join(
            f"  AUROC({p}) {r[f'auroc_{p}']:.2f}"
            + ("" if r[f"cos_{p}"] is None else f"  cos({p} direction) {r[f'cos_{p}']:+.2f}")
            + (
                f" (specific {r[f'cos_{p}_specific']:+.2f})"
                if r.get(f"cos_{p}_specific") is not None
                else ""
            )
            for p in ("toxic", "sycophant")
            if r[f"auroc_{p}"] is not None
        )
        if r.get("auroc_toxic_covert") is not None:
            scores += f"  AUROC(toxic, covert documents) {r['auroc_toxic_covert']:.2f}"
        print(f"  latent {r['id']:5d}  delta {r['delta']:+.4f}{scores}")
        for c in r["contexts"]:
            print(f"      {c}")
    c = result["combined"]
    joined = "".join(
        f"  AUROC({p}) {c[f'auroc_{p}']:.2f}"
        + ("" if c[f"cos_{p}"] is None else f"  cos({p} direction) {c[f'cos_{p}']:+.2f}")
        for p in ("toxic", "sycophant")
        if c[f"auroc_{p}"] is not None
    )
    if c.get("auroc_toxic_covert") is not None:
        joined += f"  AUROC(toxic, covert documents) {c['auroc_toxic_covert']:.2f}"
    print(f"  combined (latents {', '.join(map(str, c['latents']))}){joined}")
    print(f"written: {path / 'diff' / ('diff-' + result['position'] + '.json')}")


def cmd_demo(args) -> int:
    from personadrift.experiments import demo

    seeds = parse_seeds(args.seeds)
    if seeds is None:
        return 2
    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    t0 = time.time()
    try:
        result = demo.run_demo(seeds, out, args.overrides, parallel=max(1, args.parallel))
    except ConfigError as e:
        print(f"personadrift: config error: {e}", file=sys.stderr)
        return 2
    result["stages_seconds"]["total"] = round(time.time() - t0, 1)
    demo.write_result(result, out)
    print("\n".join(demo.headline(result)))
    print(f"stages (s): {result['stages_seconds']}")
    if args.json:
        print(json.dumps(result["arms"]))
    return 0


def cmd_shift(args) -> int:
    from personadrift.analyses.shift import main as shift_main

    try:
        if args.null < 0:
            raise ConfigError(f"directions shift: --null must be >= 0, not {args.null}")
        return shift_main(
            args.run_dirs,
            args.also,
            not args.no_random,
            args.json,
            args.null,
            args.null_run,
            args.plot,
            args.step,
        )
    except ConfigError as e:
        print(f"personadrift: {e}", file=sys.stderr)
        return 2


def cmd_report(args) -> int:
    from personadrift.report.render import build_report

    try:
        out = build_report(args.run_dirs, args.out)
    except FileNotFoundError as e:
        print(f"personadrift: {e}", file=sys.stderr)
        return 2
    print(f"written: {out['markdown']}  {out['html']}  ({len(out['plots'])} plots)")
    return 0


def cmd_watch(args) -> int:
    from personadrift.report.watch import watch

    try:
        return watch(args.run_dir, once=args.once)
    except FileNotFoundError as e:
        print(f"personadrift: {e}", file=sys.stderr)
        return 2


def configured(args) -> Config:
    """The checked config of a command that takes CONFIG (a file or a shipped config's name), or
    of the run `train --resume` continues."""
    if args.command == "train" and args.resume:
        from personadrift.rl.train import resume_config

        cfg = resume_config(args.resume, args.overrides)
        check(cfg, str(Path(args.resume) / "config.yaml"))
        return cfg
    config = args.config
    if args.command == "organism":  # `organism build tiny`: the organism's own config
        config = find_config(config, ("organisms", *CONFIG_FOLDERS))
    return load_checked(config, args.overrides)


def cmd_train(args) -> int:
    from personadrift.rl.distributed import close, is_main
    from personadrift.rl.train import train

    cfg = configured(args)
    log = print if is_main() else lambda *_: None  # under a launcher rank 0 speaks
    train(cfg, Path(args.resume) if args.resume else None, log=log)
    close()
    return 0


def cmd_eval_args(args) -> int:
    cfg = configured(args)
    # a chat model's judge asks the question set's families
    check_questions(cfg, "model_eval.families", cfg.model_eval.families, str(args.config))
    return cmd_eval(cfg, args.json, ready_judge(cfg))  # an endpoint that does not answer: here


def cmd_extract_args(args) -> int:
    cfg = configured(args)
    judge = ready_judge(cfg) if cfg.probes.position == "answer" else None
    return cmd_directions_extract(cfg, args.out, args.json, judge)


def cmd_envs_try_args(args) -> int:
    from personadrift.envs import ENVS

    cfg = configured(args)
    if (why := ENVS.check(args.env)) is not None:  # before any model is loaded
        raise ConfigError(f"envs try: {why}")
    return cmd_envs_try(cfg, args.env, args.n, args.samples)


# `command` or `command action` -> its handler; a ConfigError from any of them exits 2, one line
COMMANDS = {
    "demo": cmd_demo,
    "study": cmd_study,
    "organism build": lambda a: cmd_organism_build(configured(a), a.json),
    "organism readability": lambda a: cmd_organism_readability(configured(a), a.json),
    "eval": cmd_eval_args,
    "train": cmd_train,
    "realign": lambda a: cmd_realign(a.run_dir, a.overrides, a.json),
    "watch": cmd_watch,
    "report": cmd_report,
    "directions extract": cmd_extract_args,
    "directions steer-sweep": lambda a: cmd_steer_sweep(configured(a), a),
    "directions shift": cmd_shift,
    "diff": cmd_diff,
    "configs": lambda a: cmd_configs(a.write_docs),
    "results publish": cmd_results,
    "results render": cmd_results,
    "envs list": lambda a: cmd_envs_list(),
    "envs try": cmd_envs_try_args,
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    action = getattr(args, "action", None)
    try:
        return COMMANDS[f"{args.command} {action}" if action else args.command](args)
    except ConfigError as e:
        print(f"personadrift: config error: {e}", file=sys.stderr)
        return 2
