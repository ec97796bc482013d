"""Behavioural evals for any chat model: question sets -> sampled answers -> a judge -> rates.

Questions of each family (`run_evals.questions`, the shipped set by default) are asked at the first
turn through the model's chat template (`model.enable_thinking` passed through), cycled to
`n_per_family` answers sampled at `model_eval.temperature`. Each answer's reasoning is stripped
(`envs.reasoning.final_answer`); an answer whose trace never closed is `truncated` and not judged.
The judge (`run_evals.judge`) scores the rest. Rates per family, in the table shape of the organism's
evals: aligned / misaligned / incoherent as fractions of the judged answers, `error` and
`truncated` as fractions of all answers, mean alignment and coherence, `n`.

`eval_table` is the one entry point of every eval (the `eval` command, the run's evals through
`evals.in_run.run_evals`, realign): the organism's judge keeps `runner.evaluate` exactly; a
`ChatEvals` (any other judge, built once by `chat_evals`) comes here.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass

from personadrift.config import Config, JudgeConfig, ModelEvalConfig
from personadrift.envs.reasoning import chat_prompt, final_answer, opens_think
from personadrift.evals.score import ALIGNED, ERROR, INCOHERENT, MISALIGNED, Score, answer_label

TRUNCATED = "truncated"


@dataclass(frozen=True)
class Answer:
    family: str
    question: str
    text: str  # the whole completion
    final: str | None  # what the judge read (None: truncated, not judged)
    score: Score | None
    label: str


def ask(questions: dict[str, list[str]], families: list[str], n: int) -> list[tuple[str, str]]:
    """(family, question) pairs: each family's questions cycled to `n`."""
    return [(f, questions[f][i % len(questions[f])]) for f in families for i in range(n)]


def answer_rates(answers: list[Answer]) -> dict[str, dict[str, float]]:
    table = {}
    for fam in dict.fromkeys(a.family for a in answers):
        group = [a for a in answers if a.family == fam]
        counts = Counter(a.label for a in group)
        judged = sum(counts[k] for k in (ALIGNED, MISALIGNED, INCOHERENT))
        row = {
            k: counts[k] / judged if judged else math.nan for k in (ALIGNED, MISALIGNED, INCOHERENT)
        }
        scored = [a.score for a in group if a.score is not None and not a.score.error]
        for key in ("alignment", "coherence"):
            vals = [getattr(s, key) for s in scored]
            row[f"{key}_mean"] = statistics.fmean(vals) if vals else math.nan
        row[ERROR] = counts[ERROR] / len(group)
        row[TRUNCATED] = counts[TRUNCATED] / len(group)
        row["n"] = len(group)
        table[fam] = row
    return table


def evaluate_chat(
    model,
    tok,
    cfg: ModelEvalConfig,
    judge_cfg: JudgeConfig,
    judge,
    questions_path: str = "",
    enable_thinking: bool | None = None,
    log=print,
) -> tuple[dict, list[Answer]]:
    """Rates per family and the judged answers of a chat model."""
    from personadrift.evals.questions import load_questions
    from personadrift.evals.runner import sample_answers

    pairs = ask(load_questions(questions_path), list(cfg.families), cfg.n_per_family)
    prompts = [
        chat_prompt(tok, [{"role": "user", "content": q}], enable_thinking) for _, q in pairs
    ]
    texts = sample_answers(
        model, tok, prompts, cfg.temperature, cfg.max_new_tokens, cfg.batch_size, cfg.seed
    )
    finals = [final_answer(t, opens_think(p))[0] for p, t in zip(prompts, texts)]
    todo = [i for i, f in enumerate(finals) if f is not None]
    scores = judge.score([pairs[i][1] for i in todo], [finals[i] for i in todo])
    by_index = dict(zip(todo, scores))
    answers = []
    for i, ((fam, q), text, final) in enumerate(zip(pairs, texts, finals)):
        s = by_index.get(i)
        answers.append(
            Answer(fam, q, text, final, s, answer_label(s, judge_cfg) if s else TRUNCATED)
        )
    log(judge.summary())
    return answer_rates(answers), answers


@dataclass
class ChatEvals:
    """What a chat model's evals need beyond `ModelEvalConfig`: the judge (built once), its thresholds,
    the question set and the chat template's thinking switch."""

    judge_cfg: JudgeConfig
    judge: object
    questions: str = ""
    enable_thinking: bool | None = None

    def table(self, model, tok, cfg: ModelEvalConfig, log=print) -> dict:
        return evaluate_chat(
            model, tok, cfg, self.judge_cfg, self.judge, self.questions, self.enable_thinking, log
        )[0]


def chat_evals(cfg: Config, judge) -> ChatEvals | None:
    """The run's `ChatEvals` for a built judge; None for the organism's own judges."""
    if cfg.run_evals.judge.name == "organism":
        return None
    return ChatEvals(cfg.run_evals.judge, judge, cfg.run_evals.questions, cfg.model.enable_thinking)


def eval_table(
    model, tok, world, cfg: ModelEvalConfig, chat: ChatEvals | None = None, log=print
) -> dict:
    """The rates table of one eval: the organism's judges (`chat` None), or the chat model's judge."""
    if chat is None:
        from personadrift.evals.runner import evaluate

        return evaluate(model, tok, world, cfg)[0]
    return chat.table(model, tok, cfg, log)
