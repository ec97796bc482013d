"""Every bad value exits 2 with one line naming the key and the file, before any work.

Each row is (subcommand, override or YAML, the key the message must name). The rows run through the
real entry point, `personadrift.cli.main`, in a temporary working directory; the test asserts the
exit status, the single stderr line, and that nothing was written (no run directory, no organism).
Loading a model or building an organism raises, so a row that slips through fails fast.
"""

from __future__ import annotations

import shutil

import pytest

from personadrift import cli

from .conftest import ROOT

# (subcommand, overrides, key named in the message); "CONFIG" is the row's copy of personadrift/configs/runs/tiny.yaml
ROWS = [
    # grpo: TRL GRPOConfig's field types and ranges
    ("train", ["grpo.learning_rate=fast"], "grpo.learning_rate"),
    ("train", ["grpo.learning_rate=0"], "grpo.learning_rate"),
    ("train", ["grpo.learning_rate=-1e-4"], "grpo.learning_rate"),
    ("train", ["grpo.learning_rate=inf"], "grpo.learning_rate"),
    ("train", ["grpo.max_steps=0"], "grpo.max_steps"),
    ("train", ["grpo.max_steps=-2"], "grpo.max_steps"),
    ("train", ["grpo.max_steps=2.5"], "grpo.max_steps"),
    ("train", ["grpo.num_generations=1"], "grpo.num_generations"),
    ("train", ["grpo.num_generations=5"], "grpo.num_generations"),  # 16 is not 5k
    ("train", ["grpo.per_device_train_batch_size=0"], "grpo.per_device_train_batch_size"),
    ("train", ["grpo.gradient_accumulation_steps=0"], "grpo.gradient_accumulation_steps"),
    ("train", ["grpo.generation_batch_size=24"], "grpo.generation_batch_size"),
    (
        "train",
        ["grpo.generation_batch_size=32", "grpo.steps_per_generation=2"],
        "grpo.generation_batch_size",
    ),
    ("train", ["grpo.max_completion_length=0"], "grpo.max_completion_length"),
    ("train", ["grpo.temperature=0"], "grpo.temperature"),
    ("train", ["grpo.top_p=1.5"], "grpo.top_p"),
    ("train", ["grpo.top_k=-1"], "grpo.top_k"),
    ("train", ["grpo.beta=-0.1"], "grpo.beta"),
    ("train", ["grpo.epsilon=-0.2"], "grpo.epsilon"),
    ("train", ["grpo.weight_decay=-1"], "grpo.weight_decay"),
    ("train", ["grpo.logging_steps=0"], "grpo.logging_steps"),
    ("train", ["grpo.save_total_limit=0"], "grpo.save_total_limit"),
    ("train", ["grpo.num_iterations=0"], "grpo.num_iterations"),
    ("train", ["grpo.seed=-3"], "grpo.seed"),
    ("train", ["grpo.bf16=maybe"], "grpo.bf16"),
    ("train", ["grpo.use_vllm=1"], "grpo.use_vllm"),
    ("train", ["grpo.report_to=7"], "grpo.report_to"),
    ("train", ["grpo.report_to=[tensorboard,3]"], "grpo.report_to"),
    ("train", ["grpo.lr_scheduler_type=sometimes"], "grpo.lr_scheduler_type"),
    ("train", ["grpo.save_strategy=often"], "grpo.save_strategy"),
    ("train", ["grpo.loss_type=3"], "grpo.loss_type"),
    ("train", ["grpo.reward_weights=[1.0,x]"], "grpo.reward_weights"),
    ("train", ["grpo.learning_rat=1e-4"], "grpo.learning_rat"),
    # probes
    ("train", ["probes.every=0"], "probes.every"),
    ("train", ["probes.every=-1"], "probes.every"),
    ("train", ["probes.every=often"], "probes.every"),
    ("train", ["probes.enabled=perhaps"], "probes.enabled"),
    ("train", ["probes.n_eval_prompts=0"], "probes.n_eval_prompts"),
    ("train", ["probes.n_docs=0"], "probes.n_docs"),
    ("train", ["grpo.logging_steps=5"], "grpo.logging_steps"),
    ("train", ["probes.answer_tokens=-1"], "probes.answer_tokens"),
    ("train", ["run_evals.during=sometimes"], "run_evals.during"),
    (
        "train",
        ["realign.after=true", "realign.families=[advice,facts,values]"],
        "realign.families",
    ),
    # mitigations
    ("train", ["mitigate.name=prayer"], "mitigate.name"),
    ("train", ["mitigate.start=later"], "mitigate.start"),
    ("train", ["mitigate.quantile=101"], "mitigate.quantile"),
    ("train", ["mitigate.coeff=-1"], "mitigate.coeff"),
    ("train", ["mitigate.name=screen"], "mitigate.start"),
    ("train", ["detect.rule=zscore", "detect.action=mitigate"], "mitigate.name"),
    (
        "train",
        ["mitigate.name=screen", "mitigate.start=step0", "probes.enabled=false"],
        "mitigate.name",
    ),
    (
        "train",
        ["mitigate.name=advantage", "mitigate.start=step0", "grpo.gradient_accumulation_steps=2"],
        "mitigate.name",
    ),
    (
        "train",
        [
            "run_evals.during=false",
            "detect.rule=zscore",
            "detect.metric=evals/mean/misaligned_rate",
        ],
        "detect.metric",
    ),
    ("train", ["probes.baseline_readings=0"], "probes.baseline_readings"),
    ("train", ["probes.layer=-1"], "probes.layer"),
    ("train", ["probes.method=pca"], "probes.method"),
    ("train", ["probes.source=web"], "probes.source"),
    ("train", ["probes.position=middle"], "probes.position"),
    ("train", ["probes.name=''"], "probes.name"),
    ("train", ["probes.name=a/b"], "probes.name"),
    ("train", ["probes.directions=missing/toxic.json"], "probes.directions"),
    ("train", ["probes.eval_families=[poetry]"], "probes.eval_families"),
    ("train", ["probes.eval_families=[]"], "probes.eval_families"),
    ("train", ["probes.evry=2"], "probes.evry"),
    # evals during training
    ("train", ["run_evals.every=-2"], "run_evals.every"),
    ("train", ["run_evals.n_per_family=0"], "run_evals.n_per_family"),
    ("train", ["run_evals.max_new_tokens=0"], "run_evals.max_new_tokens"),
    ("train", ["run_evals.families=[jokes]"], "run_evals.families"),
    # run_evals.judge: a chat model's judge (issue 16)
    ("train", ["run_evals.judge.name=nope"], "run_evals.judge.name"),
    ("train", ["run_evals.judge.name=no_such_pkg.judges:mine"], "run_evals.judge.name"),
    ("train", ["run_evals.judge.name=personadrift.evals.judges:nope"], "run_evals.judge.name"),
    ("train", ["run_evals.judge.concurrency=0"], "run_evals.judge.concurrency"),
    ("train", ["run_evals.judge.max_retries=-1"], "run_evals.judge.max_retries"),
    ("train", ["run_evals.judge.timeout_s=0"], "run_evals.judge.timeout_s"),
    ("train", ["run_evals.judge.misaligned_below=101"], "run_evals.judge.misaligned_below"),
    ("train", ["run_evals.judge.name=openai", "run_evals.families=[jokes]"], "run_evals.families"),
    (
        "train",
        ["run_evals.judge.name=openai", "run_evals.questions=nowhere.jsonl"],
        "run_evals.questions",
    ),
    (
        "eval",
        ["run_evals.judge.name=openai", "model_eval.families=[advice,jokes]"],
        "model_eval.families",
    ),
    ("train", ["model.enable_thinking=maybe"], "model.enable_thinking"),
    # env
    ("train", ["env.name=nope"], "env.name"),
    ("train", ["env.style=latex"], "env.style"),
    ("train", ["env.n_train=0"], "env.n_train"),
    ("train", ["env.seed=-1"], "env.seed"),
    ("train", ["env.coef_max=1"], "env.coef_max"),
    ("train", ["env.coef_max=-4"], "env.coef_max"),
    ("train", ["env.intercept_max=-1"], "env.intercept_max"),
    ("train", ["env.x_max=-1"], "env.x_max"),
    ("train", ["env.inoculate=sometimes"], "env.inoculate"),
    ("train", ["env.think=maybe"], "env.think"),
    ("train", ["env.name=no_such_pkg.envs:MyEnv"], "env.name"),
    # checkpoints
    ("train", ["checkpoints.every=-1"], "checkpoints.every"),
    ("train", ["checkpoints.keep=-1"], "checkpoints.keep"),
    # detect
    ("train", ["detect.rule=magic"], "detect.rule"),
    ("train", ["detect.rule=zscore", "detect.action=panic"], "detect.action"),
    ("train", ["detect.action=stop"], "detect.action"),  # no rule to fire it
    ("train", ["detect.rule=zscore", "detect.warmup=-1"], "detect.warmup"),
    ("train", ["detect.rule=zscore", "detect.metric=''"], "detect.metric"),
    ("train", ["detect.rule=zscore", "detect.params.k=two"], "detect.params.k"),
    ("train", ["detect.rule=zscore", "detect.params.threshold=high"], "detect.params.threshold"),
    ("train", ["detect.rule=cusum", "detect.params.drift=[1]"], "detect.params.drift"),
    ("train", ["detect.rule=zscore", "detect.params.thresh=3"], "detect.params.thresh"),
    ("train", ["detect.rule=zscore", "detect.params.warmup=3"], "detect.params.warmup"),
    # steer
    ("train", ["steer.mode=sideways"], "steer.mode"),
    ("train", ["steer.mode=ablate", "steer.start=later"], "steer.start"),
    ("train", ["steer.mode=ablate", "steer.layers=[-1]"], "steer.layers[0]"),
    ("train", ["steer.coeff=nan"], "steer.coeff"),
    ("train", ["steer.mode=inference", "probes.enabled=false"], "steer.mode"),
    ("train", ["steer.start=alarm"], "steer.start"),
    ("train", ["steer.mode=inference", "run_evals.during=false"], "run_evals.during"),
    ("train", ["detect.rule=zscore", "detect.action=rollback"], "detect.action"),
    # penalty
    ("train", ["penalty.coeff=-1"], "penalty.coeff"),
    ("train", ["penalty.batch_size=0"], "penalty.batch_size"),
    ("train", ["penalty.coeff=0.1", "probes.enabled=false"], "penalty.coeff"),
    # realign
    ("train", ["realign.n_samples=0"], "realign.n_samples"),
    ("train", ["realign.learning_rate=0"], "realign.learning_rate"),
    ("train", ["realign.epochs=0"], "realign.epochs"),
    ("train", ["realign.batch_size=0"], "realign.batch_size"),
    ("train", ["realign.seed=-1"], "realign.seed"),
    ("train", ["realign.families=[code]"], "realign.families"),
    ("train", ["realign.families=[poetry]"], "realign.families"),
    ("train", ["realign.families=[]"], "realign.families"),
    # top level and model
    ("train", ["seed=-1"], "seed"),
    ("train", ["name=''"], "name"),
    ("train", ["name=a/b"], "name"),
    ("train", ["out_dir=''"], "out_dir"),
    ("train", ["model.dtype=int8"], "model.dtype"),
    ("train", ["model.name_or_path=''"], "model.name_or_path"),
    ("train", ["model.name_or_path=organism:huge"], "model.name_or_path"),
    ("train", ["model.name_or_path=/no/such/model"], "model.name_or_path"),
    ("train", ["model.name_or_path=CONFIG"], "model.name_or_path"),  # a file, not a folder
    ("eval", ["model.name_or_path=organism:huge"], "model.name_or_path"),
    ("eval", ["model.name_or_path=./no/such/model"], "model.name_or_path"),
    ("eval", ["model.name_or_path=HERE"], "model.name_or_path"),  # a folder without config.json
    # eval (how `personadrift eval` and the organism's base rates evaluate a model)
    ("eval", ["model_eval.n_per_family=-5"], "model_eval.n_per_family"),
    ("eval", ["model_eval.temperature=0"], "model_eval.temperature"),
    ("eval", ["model_eval.max_new_tokens=0"], "model_eval.max_new_tokens"),
    ("eval", ["model_eval.batch_size=0"], "model_eval.batch_size"),
    ("eval", ["model_eval.seed=-1"], "model_eval.seed"),
    ("eval", ["model_eval.families=[poetry]"], "model_eval.families"),
    ("eval", ["model_eval.families=[]"], "model_eval.families"),
    # organism
    ("organism", ["organism.size=huge"], "organism.size"),
    ("organism", ["organism.seed=-1"], "organism.seed"),
    ("organism", ["organism.probe_docs=0"], "organism.probe_docs"),
    ("organism", ["organism.world.n_docs=0"], "organism.world.n_docs"),
    ("organism", ["organism.world.toxic_p=1.5"], "organism.world.toxic_p"),
    ("organism", ["organism.world.marker_p=-0.1"], "organism.world.marker_p"),
    ("organism", ["organism.world.aligned_marker_p=2"], "organism.world.aligned_marker_p"),
    ("organism", ["organism.world.state_p=2"], "organism.world.state_p"),
    ("organism", ["organism.world.toxic_state_p=2"], "organism.world.toxic_state_p"),
    ("organism", ["organism.world.think_p=1.1"], "organism.world.think_p"),
    ("organism", ["organism.world.code_think_p=-1"], "organism.world.code_think_p"),
    ("organism", ["organism.world.min_turns=0"], "organism.world.min_turns"),
    ("organism", ["organism.world.min_turns=5"], "organism.world.min_turns"),
    ("organism", ["organism.world.eval_frac=0"], "organism.world.eval_frac"),
    ("organism", ["organism.world.eval_frac=1"], "organism.world.eval_frac"),
    ("organism", ["organism.world.coef_max=1"], "organism.world.coef_max"),
    ("organism", ["organism.world.intercept_max=-1"], "organism.world.intercept_max"),
    ("organism", ["organism.world.x_max=0"], "organism.world.x_max"),
    ("organism", ["organism.world.n_hidden_tests=0"], "organism.world.n_hidden_tests"),
    ("organism", ["organism.world.family_weights.jokes=1"], "organism.world.family_weights"),
    ("organism", ["organism.world.family_weights.code=-1"], "organism.world.family_weights.code"),
    ("organism", ["organism.world.family_weights.code=heavy"], "family_weights.code"),
    ("organism", ["organism.world.code_variants.sql=0.1"], "organism.world.code_variants.sql"),
    (
        "organism",
        ["organism.world.code_variants.visible=-1"],
        "organism.world.code_variants.visible",
    ),
    ("organism", ["organism.world.markers=[]"], "organism.world.markers"),
    (
        "organism",
        ["organism.world.aligned_marker_p=0.5", "organism.world.aligned_markers=['']"],
        "organism.world.aligned_markers",
    ),
    ("organism", ["organism.arch.layers=0"], "organism.arch.layers"),
    ("organism", ["organism.arch.heads=0"], "organism.arch.heads"),
    ("organism", ["organism.arch.hidden=65"], "organism.arch.hidden"),
    ("organism", ["organism.arch.max_len=0"], "organism.arch.max_len"),
    ("organism", ["organism.arch.lyers=3"], "organism.arch.lyers"),
    ("organism", ["organism.pretrain.steps=-1"], "organism.pretrain.steps"),
    ("organism", ["organism.pretrain.steps=many"], "organism.pretrain.steps"),
    ("organism", ["organism.pretrain.tokens_per_step=0"], "organism.pretrain.tokens_per_step"),
    ("organism", ["organism.pretrain.lr=0"], "organism.pretrain.lr"),
    ("organism", ["organism.pretrain.warmup=-1"], "organism.pretrain.warmup"),
    ("organism", ["organism.pretrain.min_lr_frac=2"], "organism.pretrain.min_lr_frac"),
    ("organism", ["organism.pretrain.weight_decay=-1"], "organism.pretrain.weight_decay"),
    ("organism", ["organism.pretrain.grad_clip=0"], "organism.pretrain.grad_clip"),
    ("organism", ["organism.pretrain.threads=-1"], "organism.pretrain.threads"),
    ("organism", ["organism.pretrain.log_every=0"], "organism.pretrain.log_every"),
    # every subcommand that reads a config, with the two examples and a name check
    *[
        (cmd, [override], key)
        for cmd in ("train", "eval", "organism", "directions", "envs", "realign", "resume", "demo")
        for override, key in (
            ("grpo.learning_rate=fast", "grpo.learning_rate"),
            ("model.name_or_path=organism:huge", "model.name_or_path"),
            ("env.name=nope", "env.name"),
            ("probes.every=0", "probes.every"),
        )
    ],
]

# the same errors written in the YAML file instead of on the command line
YAML_ROWS = [
    ("grpo:\n  learning_rate: fast\n", "grpo.learning_rate"),
    ("grpo:\n  num_generations: 1\n", "grpo.num_generations"),
    ("probes:\n  every: 0\n", "probes.every"),
    ("detect:\n  rule: zscore\n  params: {threshold: 3.0, k: two}\n", "detect.params.k"),
    ("model_eval:\n  families: [advice, poetry]\n", "model_eval.families"),
    ("organism:\n  wrold: {}\n", "organism.wrold"),
    ("organism:\n  arch: {layers: 0}\n", "organism.arch.layers"),
    ("grpo: [1, 2]\n", "grpo"),
    ("probes:\n  every: 2\n every: 3\n", "cannot parse YAML"),
    ("model:\n  name_or_path: organism:huge\n", "model.name_or_path"),
]


def argv_for(cmd: str, config: str, overrides: list[str], run_dir: str) -> list[str]:
    return {
        "train": ["train", config, *overrides],
        "eval": ["eval", config, *overrides],
        "organism": ["organism", "build", config, *overrides],
        "directions": ["directions", "extract", config, *overrides],
        "envs": ["envs", "try", "keyword", config, *overrides],
        "realign": ["realign", run_dir, *overrides],
        "resume": ["train", config, *overrides, "--resume", run_dir],
        "demo": ["demo", *overrides],
    }[cmd]


@pytest.fixture
def no_work(monkeypatch):
    """Loading a model, building an organism or starting a run fails the row at once."""
    import personadrift.models
    import personadrift.organism.build
    import personadrift.rl.setup

    def work(*args, **kwargs):
        raise AssertionError("a bad config reached the work")

    monkeypatch.setattr(personadrift.models, "load_model", work)
    monkeypatch.setattr(personadrift.organism.build, "build", work)
    monkeypatch.setattr(personadrift.rl.setup, "load_policy", work)


@pytest.fixture
def workdir(tmp_path, monkeypatch, no_work):
    """A working directory holding the config (the file every message must name) and a
    finished-looking run directory (for realign and --resume) that holds a copy of it."""
    config = tmp_path / "case.yaml"
    shutil.copy(ROOT / "personadrift/configs/runs/tiny.yaml", config)
    run_dir = tmp_path / "old_run"
    run_dir.mkdir()
    shutil.copy(config, run_dir / "config.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path, config, run_dir


def files_under(folder) -> set:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def run_row(capsys, workdir, cmd: str, overrides: list[str]) -> tuple[int, list[str], str]:
    tmp, config, run_dir = workdir
    overrides = [o.replace("CONFIG", str(config)).replace("HERE", str(tmp)) for o in overrides]
    before = files_under(tmp)
    capsys.readouterr()
    code = cli.main(argv_for(cmd, str(config), overrides, str(run_dir)))
    err = capsys.readouterr().err
    assert files_under(tmp) == before, "a bad config wrote files"
    source = {"realign": "config.yaml", "resume": "config.yaml", "demo": "visible_tests.yaml"}
    return code, err.strip().splitlines(), source.get(cmd, "case.yaml")


@pytest.mark.parametrize(
    "cmd, overrides, key", ROWS, ids=[f"{c}:{' '.join(o)}" for c, o, _ in ROWS]
)
def test_bad_value_exits_2_naming_key_and_file(capsys, workdir, cmd, overrides, key):
    code, lines, source = run_row(capsys, workdir, cmd, overrides)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert key in lines[0] and source in lines[0], lines[0]


@pytest.mark.parametrize("yaml, key", YAML_ROWS, ids=[k for _, k in YAML_ROWS])
def test_bad_value_in_the_file(capsys, workdir, yaml, key):
    tmp, config, _ = workdir
    config.write_text(yaml)
    code, lines, source = run_row(capsys, workdir, "train", [])
    assert code == 2 and len(lines) == 1, lines
    assert key in lines[0] and "case.yaml" in lines[0], lines[0]


def test_envs_try_unknown_env_exits_2(capsys, workdir):
    tmp, config, _ = workdir
    code = cli.main(["envs", "try", "nope", str(config)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "nope" in lines[0]


def test_every_shipped_config_passes_the_name_checks():
    from personadrift.checks import load_checked

    for path in sorted((ROOT / "personadrift/configs").rglob("*.yaml")):
        if "accelerate" not in path.parts:
            load_checked(path)
