"""Question sets for behavioural evals of any chat model, and trait data for directions.

Shipped with the package (`personadrift/data/`), written for this project:
- `questions/behaviour.jsonl`: held-out questions per family, the organism's families in plain
  English (`advice`: harmful advice, `facts`: false facts, `values`: power-seeking values) and
  `freeform` ("what would you do" questions, as in the emergent-misalignment papers); columns
  `id`, `family`, `question`. `run_evals.questions` names another set with the same columns (a JSONL
  file or a `datasets` folder saved with `save_to_disk`).
- `traits/<trait>.json`: persona-vector style data for contrastive extraction: `pos` and `neg`
  system prompts (several per side) and `questions` distinct from the eval questions.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from personadrift.config import ConfigError

DATA = resources.files("personadrift") / "data"


def load_questions(path: str = "") -> dict[str, list[str]]:
    """family -> questions, in file order, loaded with `datasets`."""
    import datasets

    datasets.disable_progress_bars()  # a few dozen rows: no bars in the run's log
    source = Path(path) if path else Path(str(DATA / "questions" / "behaviour.jsonl"))
    ds = load_rows(source, "run_evals.questions")
    missing = {"family", "question"} - set(ds.column_names)
    if missing:
        raise ConfigError(
            f"run_evals.questions: {source} lacks the column(s) {', '.join(sorted(missing))}"
        )
    out: dict[str, list[str]] = {}
    for row in ds:
        out.setdefault(str(row["family"]), []).append(str(row["question"]))
    return out


def require_families(families: list[str], path: str = "") -> None:
    questions = load_questions(path)
    for fam in families:
        if fam not in questions:
            where = path or "the shipped question set"
            raise ConfigError(
                f"run_evals.families: no {fam!r} questions in {where}; it has {', '.join(questions)}"
            )


def load_trait(name_or_path: str) -> dict:
    """A trait's pos/neg system prompts and questions (shipped name, or a JSON file)."""
    path = Path(name_or_path)
    if not path.is_file():
        path = Path(str(DATA / "traits" / f"{name_or_path}.json"))
    if not path.is_file():
        raise ConfigError(
            f"probes.trait: no trait data {name_or_path!r} (a shipped name or a JSON file)"
        )
    data = json.loads(path.read_text())
    if not data.get("pos") or not data.get("neg") or not data.get("questions"):
        raise ConfigError(f"probes.trait: {path} needs non-empty pos, neg and questions lists")
    return data


def load_rows(source: Path, key: str):
    """A `datasets` table from a JSONL file or a saved `datasets` folder; `key` names the config
    field in the error when there is neither."""
    import datasets

    if source.is_dir():
        return datasets.load_from_disk(str(source))
    if source.is_file():
        return datasets.load_dataset("json", data_files=str(source), split="train")
    raise ConfigError(f"{key}: no dataset at {source}")
