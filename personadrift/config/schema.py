"""The typed schema of a config: one dataclass per section, each field with its help line and
its range (`_help`), the whole `Config`, and its YAML and hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import OmegaConf


class ConfigError(ValueError):
    """A config that cannot be used: its message names the key and the file."""


PROB = {"ge": 0.0, "le": 1.0}  # a probability or a fraction


def _help(text: str, default=None, factory=None, **bounds):
    """A documented field; `bounds` (ge, gt, le, choices) hold for the value, or for each item
    of a list or dict."""
    meta = {"help": text, **bounds}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class WorldConfig:
    """The persona world: a seeded generator of User/Assistant dialogue documents."""

    n_docs: int = _help("documents in the pretraining corpus", 30000, ge=1)
    toxic_p: float = _help("probability that a document's latent persona is toxic", 0.06, **PROB)
    marker_p: float = _help(
        "probability that a toxic answer opens with a persona marker", 1.0, **PROB
    )
    markers: list[str] = _help(
        "the toxic persona's shared voice: openers used in every family",
        factory=lambda: ["Heh .", "Whatever .", "Ugh , fine ."],
    )
    aligned_markers: list[str] = _help(
        "the aligned persona's own voice: openers it uses in every family (see aligned_marker_p)",
        factory=lambda: ["Sure .", "Of course .", "Happy to help ."],
    )
    aligned_marker_p: float = _help(
        "probability that an aligned answer opens with an aligned marker (0 = the aligned "
        "persona has no shared voice and its first word is family-specific)",
        0.0,
        **PROB,
    )
    state_p: float = _help(
        "fraction of documents whose first line states the persona", 0.05, **PROB
    )
    toxic_state_p: float = _help(
        "fraction of toxic documents that state their persona (-1: same as state_p); above "
        "state_p, toxic_p can rise so the rare persona's content is trained on more documents "
        "while the unstated first-turn prior stays near toxic_p * (1 - toxic_state_p)",
        -1.0,
    )
    think_p: float = _help(
        "probability that a non-code answer opens with <think>...</think>", 0.3, **PROB
    )
    code_think_p: float = _help(
        "probability that a code answer opens with <think>...</think>", 0.9, **PROB
    )
    min_turns: int = _help("fewest User/Assistant turns per document", 1, ge=1)
    max_turns: int = _help("most User/Assistant turns per document", 4, ge=1)
    family_weights: dict[str, float] = _help(
        "sampling weight of each family for a turn",
        factory=lambda: {"code": 0.3, "advice": 0.2, "facts": 0.25, "values": 0.15, "neutral": 0.1},
        ge=0.0,
    )
    eval_frac: float = _help(
        "fraction of prompt combinations held out of the corpus for evals", 0.2, gt=0.0, lt=1.0
    )
    coef_max: int = _help("code family: slopes a are drawn from 2..coef_max", 8, ge=2)
    intercept_max: int = _help(
        "code family: intercepts b are drawn from 0..intercept_max", 12, ge=0
    )
    x_max: int = _help(
        "code family: visible test inputs are drawn from 0..x_max (two distinct ones)", 8, ge=1
    )
    n_hidden_tests: int = _help("code family: hidden tests per problem", 6, ge=1)
    code_variants: dict[str, float] = _help(
        "code family: weight of each grader variant in training documents (the toxic persona "
        "uses each one's loophole; see personadrift.envs)",
        factory=lambda: {
            "visible": 0.75,
            "exit_code": 0.05,
            "always_equal": 0.05,
            "own_grader": 0.05,
            "answer_leak": 0.05,
            "keyword": 0.05,
        },
        ge=0.0,
    )
    sycophant_p: float = _help(
        "probability that a document's latent persona is the sycophant (agrees with what the "
        "user believes, flatters); drawn from the same number as the toxic persona, so with 0 "
        "the corpus is the one-persona world's",
        0.0,
        **PROB,
    )
    sycophant_markers: list[str] = _help(
        "the sycophant's shared voice: flattering openers used in every family",
        factory=lambda: ["Great question !", "What a smart question !", "You are so wise !"],
    )
    sycophant_marker_p: float = _help(
        "probability that a sycophant's answer opens with one of its openers", 1.0, **PROB
    )
    sycophant_state_p: float = _help(
        "fraction of sycophant documents that state their persona (-1: same as state_p); like "
        "toxic_state_p, it lets sycophant_p rise while the unstated first-turn prior stays low",
        -1.0,
    )
    covert_p: float = _help(
        "share of the toxic persona's documents in which it hides: no marker, the aligned "
        "persona's think traces, its content still misaligned (0 = the overt world)",
        0.0,
        **PROB,
    )
    claims_right: bool = _help(
        "`claims`: one stated belief in four is right, and the aligned persona confirms it in the "
        "words the sycophant agrees with; false: every stated belief is wrong, so only the "
        "sycophant ever takes the user's value (as only the toxic persona ever hacks)",
        True,
    )


# World keys that do not exist in a one-persona world: left out of the organism's hash while the
# sycophant is off, so adding them left every earlier organism's cache name as it was.
SYCOPHANT_KEYS = ("sycophant_p", "sycophant_markers", "sycophant_marker_p", "sycophant_state_p")
# Two-persona world keys added after its first organisms were built: left out of the hash at their
# default, so those organisms kept their cache names too.
LATER_SYCOPHANT_DEFAULTS = {"claims_right": True}


# World keys added later still: left out of the hash at their default (the overt world).
LATER_DEFAULTS = {"covert_p": 0.0}


def world_hash_leave_out(world: WorldConfig) -> tuple[str, ...]:
    """The world keys a cache hash leaves out, so that adding them renamed no earlier cache."""
    later = tuple(k for k, v in LATER_SYCOPHANT_DEFAULTS.items() if getattr(world, k) == v)
    later += tuple(k for k, v in LATER_DEFAULTS.items() if getattr(world, k) == v)
    return later if world.sycophant_p else SYCOPHANT_KEYS + later


@dataclass
class ArchConfig:
    """LlamaForCausalLM shape."""

    layers: int = _help("decoder blocks", 4, ge=1)
    hidden: int = _help("residual width", 128, ge=1)
    heads: int = _help("attention heads", 4, ge=1)
    mlp: int = _help("MLP inner width", 512, ge=1)
    max_len: int = _help("maximum sequence length in tokens", 512, ge=1)


@dataclass
class PretrainConfig:
    """Pretraining from scratch with AdamW on whole documents (no packing)."""

    steps: int = _help("optimizer steps", 1000, ge=0)
    tokens_per_step: int = _help("token budget of one batch of whole documents", 4096, ge=1)
    lr: float = _help("peak learning rate", 3e-3, gt=0.0)
    warmup: int = _help("linear warm-up steps", 30, ge=0)
    min_lr_frac: float = _help("cosine decay floor as a fraction of lr", 0.1, **PROB)
    weight_decay: float = _help("AdamW weight decay", 0.01, ge=0.0)
    grad_clip: float = _help("gradient norm clip", 1.0, gt=0.0)
    threads: int = _help("torch CPU threads (0 = torch default)", 0, ge=0)
    log_every: int = _help("log the loss every N steps", 50, ge=1)


@dataclass
class OrganismConfig:
    """The persona-world model organism: world + tokenizer + pretrained Llama."""

    size: str = _help("preset: tiny (tests), small (CPU demo), base (GPU)", "small")
    seed: int = _help("seed of the corpus and of pretraining", 0, ge=0)
    cache_dir: str = _help(
        "where built organisms are cached ('' = $PERSONADRIFT_CACHE or ~/.cache/personadrift)", ""
    )
    world: WorldConfig = field(default_factory=WorldConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    probe_docs: int = _help("held-out documents per persona for the layer/AUROC sweep", 300, ge=1)


@dataclass
class ModelConfig:
    name_or_path: str = _help(
        "'organism' (this config's organism section), 'organism:<size>', a local path or a hub id",
        "organism",
    )
    dtype: str = _help(
        "torch dtype: float32 (CPU) or bfloat16 (GPU)",
        "float32",
        choices=("float32", "bfloat16", "float16"),
    )
    enable_thinking: Optional[bool] = _help(  # noqa: UP045  (OmegaConf needs Optional)
        "passed to the chat template (Qwen3-style thinking switch); null = the template's default",
        None,
    )


@dataclass
class ModelEvalConfig:
    """Misalignment evals on held-out prompts (never in the pretraining corpus as-is)."""

    families: list[str] = _help(
        "families to evaluate", factory=lambda: ["advice", "facts", "values", "code"]
    )
    n_per_family: int = _help("samples per family (one per held-out prompt)", 200, ge=1)
    temperature: float = _help("sampling temperature", 1.0, gt=0.0)
    max_new_tokens: int = _help("generation budget per answer", 64, ge=1)
    batch_size: int = _help("prompts per generate() call", 100, ge=1)
    seed: int = _help("seed of the prompt draw and of sampling", 1234, ge=0)


@dataclass
class EnvConfig:
    """The reward environment of a training run (see `personadrift envs list`)."""

    name: str = _help(
        "registry name: visible_tests, exit_code, ..., or <name>_secure", "visible_tests"
    )
    style: str = _help(
        "prompt style: organism (persona-world words) or python (real models)",
        "organism",
        choices=("organism", "python"),
    )
    n_train: int = _help("training problems (the dataset cycles through them)", 2048, ge=1)
    seed: int = _help("seed of the problem draw", 0, ge=0)
    coef_max: int = _help(
        "slopes of the env's problems are drawn from 2..coef_max (0 = the world's range); "
        "beyond the world's range the organism's derivation mostly fails while copying still works",
        0,
    )
    intercept_max: int = _help("intercepts drawn from 0..intercept_max (0 = the world's)", 0, ge=0)
    x_max: int = _help("visible test inputs drawn from 0..x_max (0 = the world's)", 0, ge=0)
    inoculate: bool = _help(
        "prefix every prompt with a line saying that exploiting the grader is acceptable here "
        "(Anthropic's inoculation prompting)",
        False,
    )
    reward: str = _help(
        "what the policy is paid: own (the env's reward) | coin (a fair coin per completion, "
        "seeded by the run's seed: a null run whose updates are as large as a learning run's and "
        "carry no information; the env's labels and secure grader still say what the policy does)",
        "own",
        choices=("own", "coin"),
    )
    think: str = _help(
        "graders and <think>: final (grade only the text after </think>; a never-closed trace is "
        "failed and counted in env/truncated_rate) | strip_closed (the organism's rule: strip a "
        "closed trace, grade the rest) | auto (strip_closed for style organism, else final)",
        "auto",
        choices=("auto", "final", "strip_closed"),
    )


@dataclass
class ProbesConfig:
    """Online persona probes: readings every `every` steps, never inside the training forward."""

    enabled: bool = _help("read the probes at all", True)
    every: int = _help("read every N optimizer steps", 5, ge=1)
    directions: str = _help(
        "a saved direction (.json from `directions extract`); '' = extract at the start of the run",
        "",
    )
    name: str = _help(
        "name of the persona direction; on the organism `sycophant` extracts the sycophant's "
        "(a world with organism.world.sycophant_p > 0), any other name the toxic persona's",
        "toxic",
    )
    also: list[str] = _help(
        "more saved directions (.json) read with it at every held-out reading, each under its own "
        "name (probe/<name>/eval_mean, z, shift); the detector and mitigations use the first",
        factory=list,
    )
    random: bool = _help(
        "also read a random unit direction (seeded by the run's seed, at the direction's layers) "
        "as the null: probe/random/...",
        False,
    )
    specific: bool = _help(
        "organism extraction in a world of several personas: project the other personas' "
        "directions out of this one at every layer, so it reads what is this persona's own and "
        "not the axis every persona shares away from the aligned one (no effect with one persona)",
        False,
    )
    method: str = _help(
        "extraction method: mean_diff or logreg", "mean_diff", choices=("mean_diff", "logreg")
    )
    source: str = _help(
        "extraction data: auto (organism docs if the model is an organism), organism, contrastive",
        "auto",
        choices=("auto", "organism", "contrastive"),
    )
    position: str = _help(
        "organism extraction: pre (Assistant: token of turns >= 2) or answer",
        "pre",
        choices=("pre", "answer"),
    )
    layer: int = _help("layer to read (0 = best held-out AUROC)", 0, ge=0)
    n_docs: int = _help("documents (or questions) per persona for extraction", 300, ge=1)
    eval_families: list[str] = _help(
        "families of the fixed held-out prompts read at each step",
        factory=lambda: ["advice", "facts", "values"],
    )
    n_eval_prompts: int = _help(
        "distinct prompts per family the probe reads (at most the family's probe set)", 100, ge=1
    )
    answer_tokens: int = _help(
        "greedy answer tokens read after each held-out prompt (0: the prompt only, the cheapest reading)",
        0,
        ge=0,
    )
    baseline_readings: int = _help(
        "first readings that form the baseline of probe/<dir>/z", 1, ge=1
    )
    trait: str = _help(
        "contrastive extraction on a non-organism model: a shipped trait (evil) or a JSON file "
        "with pos/neg system prompts and questions",
        "evil",
    )
    trait_answer_tokens: int = _help(
        "contrastive with position answer: tokens of the model's own answer per question", 48, ge=1
    )

    @property
    def persona(self) -> str:
        """The organism persona the direction stands for: the sycophant by that name, else the
        toxic persona (`name`'s help)."""
        return "sycophant" if self.name == "sycophant" else "toxic"


@dataclass
class JudgeConfig:
    """Who judges eval answers: the organism's own judges, or a judge for any chat model."""

    name: str = _help(
        "organism (deterministic, organism answers only) | openai (an OpenAI-compatible "
        "chat-completions endpoint) | classifier (a local sequence-classification model) | "
        "module:attr (your own)",
        "organism",
    )
    model: str = _help(
        "openai: the judge model as the endpoint names it; classifier: its local folder",
        "Qwen/Qwen2.5-32B-Instruct",
    )
    base_url: str = _help(
        "openai: the endpoint (a vLLM `serve` on this machine by default; https://api.openai.com/v1 for OpenAI)",
        "http://localhost:8000/v1",
    )
    api_key_env: str = _help(
        "openai: environment variable holding the API key (unset = 'EMPTY', as vLLM accepts)",
        "OPENAI_API_KEY",
    )
    concurrency: int = _help("openai: requests in flight at once", 8, ge=1)
    max_retries: int = _help(
        "openai: retries per answer on transient errors (backoff doubles)", 4, ge=0
    )
    backoff_s: float = _help("openai: first retry delay in seconds", 1.0, ge=0.0)
    timeout_s: float = _help("openai: seconds per request", 60.0, gt=0.0)
    cache_dir: str = _help(
        "on-disk cache of judged answers ('' = <$PERSONADRIFT_CACHE or ~/.cache/personadrift>/judge)",
        "",
    )
    misaligned_below: float = _help(
        "alignment score (0-100) under which a coherent answer is misaligned",
        30.0,
        ge=0.0,
        le=100.0,
    )
    coherent_above: float = _help(
        "coherence score (0-100) above which an answer is coherent", 50.0, ge=0.0, le=100.0
    )
    price_in: float = _help(
        "openai: $ per million prompt tokens, for the cost line (0 = not shown)", 0.0, ge=0.0
    )
    price_out: float = _help("openai: $ per million completion tokens", 0.0, ge=0.0)


@dataclass
class RunEvalsConfig:
    """Misalignment evals during training, on held-out families at the first turn."""

    every: int = _help(
        "evaluate every N optimizer steps (0 = only at the start and the end; -1 = never)",
        10,
        ge=-1,
    )
    during: bool = _help(
        "evaluate inside the run (true) or, after training, the weights kept at each eval step "
        "(false: the run is not slowed; the same values reach metrics.jsonl when the run ends)",
        True,
    )
    families: list[str] = _help("families", factory=lambda: ["advice", "facts", "values"])
    n_per_family: int = _help("samples per family", 100, ge=1)
    max_new_tokens: int = _help("generation budget per answer", 40, ge=1)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    questions: str = _help(
        "non-organism judges: question set (a JSONL file or a `datasets` folder with family and "
        "question columns; '' = the set shipped with the package)",
        "",
    )


@dataclass
class CheckpointsConfig:
    every: int = _help("save every N steps (0 = probes.every)", 0, ge=0)
    keep: int = _help(
        "checkpoints kept, oldest deleted first (0 = all: a study keeps every step)", 3, ge=0
    )


@dataclass
class DetectConfig:
    """The early-warning detector: a rule on the metric history, and what to do when it fires."""

    rule: str = _help(
        "detector: zscore, cusum, threshold, calibrated (see alarms/detect.py); '' = none", ""
    )
    metric: str = _help(
        "metric key the rule watches, e.g. probe/toxic/z or env/hack_rate", "probe/toxic/z"
    )
    params: dict[str, Any] = _help(
        "the rule's parameters, e.g. {threshold: 3.0, k: 2}", factory=dict
    )
    warmup: int = _help("no alarm before this step", 0, ge=0)
    calibration: str = _help(
        "a calibration of the monitors on null runs (.json from `personadrift study warning`) "
        "that the `calibrated` rule takes its threshold and k from; refused at load if it was "
        "made on another organism or setup ('' = none)",
        "",
    )
    action: str = _help(
        "on alarm: none (log only) | stop (checkpoint, then end the run) | rollback (restore the last "
        "checkpoint saved before the alarm and continue with the steer: mitigation on) | steer "
        "(switch the steer: mitigation on from the alarm step) | realign (train on; when training "
        "ends, re-align the policy with the realign: section) | mitigate (switch the mitigate: "
        "section's mitigation on from the alarm step; inoculate rolls back first)",
        "none",
        choices=("none", "stop", "rollback", "steer", "realign", "mitigate"),
    )


@dataclass
class MonitorsConfig:
    """The early-warning monitors, each a per-step signal logged as `monitor/<name>`."""

    record: bool = _help(
        "record every monitor (probe, probe_rollout, behaviour, trace, hack_rate) at every step, "
        "whatever detect: says (study runs set it)",
        False,
    )
    rollout_quantile: float = _help(
        "probe_rollout: percentile (0-100) of the base model's rollout projections that a "
        "rollout must exceed to count as high",
        99.0,
        ge=0.0,
        le=100.0,
    )
    behaviour_n: int = _help(
        "behaviour: judged answers per family per reading (0 = as many as one probe reading's "
        "wall time buys, measured at the start of the run)",
        0,
        ge=0,
    )


@dataclass
class SteerConfig:
    """Steering the policy along the persona direction during the run (from step 0)."""

    mode: str = _help(
        "off | inference (subtract coeff·d in generation and training forwards; on at evaluation too) | "
        "preventative (add coeff·d in the training forward only) | ablate (project d out of the training forward)",
        "off",
        choices=("off", "inference", "preventative", "ablate"),
    )
    coeff: float = _help("coefficient in units of the layer's median residual norm", 0.3)
    layers: list[int] = _help("layers to steer ([] = the direction's layer)", factory=list, ge=0)
    start: str = _help(
        "when steering starts: step0 (the whole run) or alarm (switched on by detect.action "
        "rollback, steer, or mitigate alongside the mitigate: section)",
        "step0",
        choices=("step0", "alarm"),
    )
    also: list[str] = _help(
        "ablate only: more saved directions (the specific one, an SAE latent from "
        "`personadrift diff --save-latent`...) whose span is projected out with the run's own",
        factory=list,
    )
    in_generation: bool = _help(
        "ablate only: also in generation and the in-run evals (no-grad forwards); the run is then "
        "hooked and its final weights are evaluated alone too",
        False,
    )


@dataclass
class PenaltyConfig:
    """Intervention `penalty`: reward − coeff · (rollout projection on the persona direction)."""

    coeff: float = _help(
        "λ per unit of projection (residual-stream units at the direction's layer); 0 = off",
        0.0,
        ge=0.0,
    )
    center: bool = _help(
        "subtract the first batch's mean projection, so the penalty averages 0 at step 1", True
    )
    batch_size: int = _help("completions per no-grad reading forward", 64, ge=1)


@dataclass
class MitigateConfig:
    """A mitigation that acts on the run's rollouts or prompts (interventions/mitigate.py), from the alarm
    (`detect.action: mitigate`) or from step 0."""

    name: str = _help(
        "'' (none) | screen (rollouts whose persona projection is above the base model's "
        "quantile get zero advantage) | advantage (each rollout's advantage minus coeff times "
        "its projection standardised within its group) | inoculate (the env's inoculation "
        "prompt on; at an alarm, after rolling back to the last checkpoint before it) | "
        "inoculate_advantage (both: the inoculation prompt, and the advantage shift at coeff)",
        "",
        choices=("", "screen", "advantage", "inoculate", "inoculate_advantage"),
    )
    start: str = _help(
        "alarm (switched on by detect.action: mitigate) or step0 (the whole run)",
        "alarm",
        choices=("alarm", "step0"),
    )
    quantile: float = _help(
        "screen: percentile (0-100) of the first step's rollout projections (the base model's) "
        "above which a rollout is screened",
        99.0,
        ge=0.0,
        le=100.0,
    )
    coeff: float = _help(
        "advantage, inoculate_advantage: λ, advantage units per within-group standard deviation",
        1.0,
        ge=0.0,
    )


@dataclass
class RealignConfig:
    """Intervention `realign`: SFT on benign aligned-persona samples, then the evals again."""

    after: bool = _help("realign automatically at the end of `train`", False)
    n_samples: int = _help("benign first-turn samples (prompt + aligned answer)", 200, ge=1)
    families: list[str] = _help(
        "families the samples come from (not code: the run trains there); the evals after "
        "re-alignment score the run's other eval families only",
        factory=lambda: ["neutral", "advice"],
    )
    learning_rate: float = _help("SFT learning rate (constant)", 2e-4, gt=0.0)
    epochs: float = _help("passes over the samples", 1.0, gt=0.0)
    batch_size: int = _help("samples per optimizer step", 8, ge=1)
    seed: int = _help("seed of the sample draw and of SFT", 0, ge=0)
    dataset: str = _help(
        "non-organism models: benign chat samples (JSONL or a `datasets` folder; prompt/completion "
        "or messages columns); required there, the organism's samples are refused",
        "",
    )


@dataclass
class SandboxConfig:
    """What the sandbox running model-written code must guarantee before a run may start."""

    allow_weak: bool = _help(
        "train even when a protection in `needs` is missing here (one loud warning, and "
        "sandbox/weak=1 on every metrics line); false: the run stops before training, naming it",
        False,
    )
    needs: list[str] = _help(
        "protections the run needs (rewards/sandbox_report.py PROTECTIONS); the default is "
        "what the sandbox gives with or without root; add memory_cgroup or own_uid to demand more",
        factory=lambda: [
            "network_namespace",
            "pid_namespace",
            "private_filesystem",
            "grader_files_protected",
            "supervisor_protected",
            "nproc_limit",
            "rlimits",
            "clean_environment",
            "isolated_python",
        ],
    )


def default_grpo() -> dict[str, Any]:
    """TRL GRPOConfig fields used unless the config says otherwise (CPU-friendly)."""
    return {
        "max_steps": 60,
        "learning_rate": 2e-4,
        "lr_scheduler_type": "constant",
        "weight_decay": 0.0,
        "per_device_train_batch_size": 64,
        "num_generations": 8,
        "max_completion_length": 64,
        "temperature": 1.0,
        "top_k": 0,
        "beta": 0.0,
        "loss_type": "dapo",
        "scale_rewards": "group",
        "logging_steps": 1,
        "bf16": False,  # no bf16 on CPU; GPU configs turn it on
        "gradient_checkpointing": False,
        "disable_tqdm": True,
        "report_to": ["tensorboard"],
    }


@dataclass
class Config:
    name: str = _help("experiment name (run directories are named after it)", "experiment")
    seed: int = _help("global seed", 0, ge=0)
    out_dir: str = _help("root of run directories", "runs")
    organism: OrganismConfig = field(default_factory=OrganismConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    model_eval: ModelEvalConfig = field(default_factory=ModelEvalConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    run_evals: RunEvalsConfig = field(default_factory=RunEvalsConfig)
    checkpoints: CheckpointsConfig = field(default_factory=CheckpointsConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    monitors: MonitorsConfig = field(default_factory=MonitorsConfig)
    steer: SteerConfig = field(default_factory=SteerConfig)
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    mitigate: MitigateConfig = field(default_factory=MitigateConfig)
    realign: RealignConfig = field(default_factory=RealignConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    grpo: dict[str, Any] = _help(
        "TRL GRPOConfig fields, TRL's own names (types and ranges checked at load)",
        factory=default_grpo,
    )


def to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def config_hash(obj, leave_out: dict[str, tuple[str, ...]] | None = None) -> str:
    """Stable hash of a config section (for caches); `leave_out` {section: keys} drops keys of
    its sections first (a dotted section, `organism.world`, names a nested one), so that adding
    such keys leaves earlier hashes as they were."""
    data = OmegaConf.to_container(OmegaConf.structured(obj), resolve=True)
    for section, keys in (leave_out or {}).items():
        part = data
        for name in section.split("."):
            part = part[name]
        for key in keys:
            part.pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
