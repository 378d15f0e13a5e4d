"""The student as a deliverable: a transformers model directory anyone can load.

A saved student is ``config.json`` (``id2label`` / ``label2id``, the encoder's own config,
the head), ``model.safetensors`` (the trained weights, unchanged), the tokenizer files,
``modeling_candist.py`` (the model class, see its docstring for why a stock head does not
fit) and a model card ``README.md``. Directories are written under a temporary name and
renamed into place, so a crash never leaves half a model that looks whole.

Students saved before this format (``head.pt`` + ``labels.json`` next to the encoder) are
still loaded: :func:`load_model_dir` builds the same model in memory.
"""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .encoder import pick_device
from .folders import write_folder
from .modeling_candist import (
    CandistStudentConfig,
    CandistStudentForSequenceClassification,
)
from .records import StudentError

MODEL_CODE = Path(__file__).with_name("modeling_candist.py")
AUTO_MAP = {
    "AutoConfig": "modeling_candist.CandistStudentConfig",
    "AutoModelForSequenceClassification":
        "modeling_candist.CandistStudentForSequenceClassification",
}


@dataclass(frozen=True)
class ModelCard:
    """What a model card says about where a student came from and how good it is."""

    project: str
    labels: list[str]
    method: str
    teacher: str = "no teacher run (human labels only)"
    settings: dict = field(default_factory=dict)
    human_labels: int = 0
    best_epoch: int | None = None
    epochs_run: int = 0
    accuracy: list[str] = field(default_factory=list)   # sentences, each says what it measured
    run_id: int | None = None

    def markdown(self, *, head: str, max_tokens: int | None) -> str:
        labels = "\n".join(f"| {i} | {name} |" for i, name in enumerate(self.labels))
        settings = "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in
                             sorted(self.settings.items()))
        quality = "\n".join(f"- {line}" for line in self.accuracy) or \
            "- No accuracy figure: the project has neither gold labels nor human decisions."
        return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [candist, text-classification]
---
# CanDist student: {self.project}

A text classifier distilled by CanDist Studio from an LLM teacher's candidate label sets
(method `{self.method}`){f", student run #{self.run_id}" if self.run_id else ""}.

## Use it

```python
from transformers import pipeline
classify = pipeline("text-classification", model="PATH/TO/THIS/FOLDER",
                    trust_remote_code=True)
classify("a text to label", top_k=None)   # every label with its probability
```

`trust_remote_code=True` runs `modeling_candist.py` from this folder (about 100 lines,
transformers and torch only): the student averages all token states (mean pooling), which no
stock transformers classification head does. Or, with CanDist Studio installed:
`python -m candist_core predict --model PATH --in new.csv --out labelled.csv`.

## How it was made

- Teacher: {self.teacher}
- Human labels used as fixed targets: {self.human_labels}
- Best epoch (chosen without gold labels): {self.best_epoch} of {self.epochs_run}
- Head: {head}; inputs are cut to {max_tokens or "the encoder's maximum"} tokens, as in training

## Quality

{quality}

## Labels

| id | label |
| --- | --- |
{labels}

## Settings

| setting | value |
| --- | --- |
{settings}
"""


def student_config(encoder_config, labels: list[str], *, cosine: bool, scale: float,
                   dropout: float = 0.1, max_tokens: int | None) -> CandistStudentConfig:
    """The shipped class's config: the encoder's own, the head, and the label names."""
    return CandistStudentConfig(
        encoder=encoder_config.to_dict(), head="cosine" if cosine else "linear",
        head_scale=scale, head_dropout=dropout, max_tokens=max_tokens,
        num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)}, auto_map=AUTO_MAP,
        architectures=[CandistStudentForSequenceClassification.__name__])


def to_transformers(model, labels: list[str], *, max_tokens: int | None
                    ) -> CandistStudentForSequenceClassification:
    """The trainer's :class:`student.StudentModel` as the shipped model class, with the same
    weights (the state-dict keys are the same by design)."""
    config = student_config(model.encoder.config, labels, cosine=model.cosine,
                            scale=model.scale, dropout=model.dropout.p, max_tokens=max_tokens)
    hf = CandistStudentForSequenceClassification(config)
    missing, unexpected = hf.load_state_dict(
        {k: v.detach().cpu() for k, v in model.state_dict().items()}, strict=False)
    if missing or unexpected:
        raise StudentError(f"The student's weights do not fit the saved model class "
                           f"(missing {missing[:3]}, unexpected {unexpected[:3]}).")
    return hf.eval()


def save_model_dir(model, tokenizer, labels: list[str], path: str | Path, *,
                   max_tokens: int | None, card: ModelCard | None = None) -> Path:
    """Write the student as a transformers directory at ``path`` (replaced if present)."""
    hf = to_transformers(model, labels, max_tokens=max_tokens)

    def fill(tmp: Path) -> None:
        hf.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.copyfile(MODEL_CODE, tmp / MODEL_CODE.name)
        if card is not None:
            (tmp / "README.md").write_text(card.markdown(head=hf.config.head,
                                                         max_tokens=max_tokens))

    return write_folder(Path(path), fill)


def save_with_head(base: str | Path, path: str | Path, head, *, note: str) -> Path:
    """The model folder ``base`` with its classifier head replaced by ``head`` (a
    :class:`learning.Head`), written to ``path``: a continuous-student update changes only
    the head, so the encoder's weights, config, tokenizer and model class are ``base``'s.
    ``note`` is added to the model card (what the update learnt from)."""
    from safetensors.torch import load_file, save_file
    base = check_model_dir(base)
    config = json.loads((base / "config.json").read_text())
    if (config.get("head") == "cosine") != bool(head.cosine) or \
            config.get("num_labels", len(config.get("id2label", {}))) != len(head.bias):
        raise StudentError(f"The updated head does not fit the model folder {base}.")
    weights = load_file(str(base / "model.safetensors"))
    for name, value in (("head.weight", head.weight), ("head.bias", head.bias)):
        weights[name] = torch.as_tensor(value, dtype=weights[name].dtype).contiguous()

    def fill(tmp: Path) -> None:
        for item in base.iterdir():
            if item.is_file() and item.name not in ("model.safetensors", "README.md"):
                shutil.copyfile(item, tmp / item.name)
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        card = (base / "README.md").read_text() if (base / "README.md").is_file() else ""
        (tmp / "README.md").write_text(card.rstrip() + "\n\n## Continuous update\n\n"
                                       + note + "\n")

    return write_folder(Path(path), fill)


def check_model_dir(path: str | Path) -> Path:
    """``path`` if it holds a saved student (checked before any input is read)."""
    path = Path(path)
    if not path.is_dir():
        raise StudentError(f"No model folder at {path}.")
    if (path / "head.pt").is_file() and (path / "labels.json").is_file():
        return path
    config_file = path / "config.json"
    if not config_file.is_file():
        raise StudentError(f"{path} is not a saved student (config.json missing).")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (ValueError, AttributeError):
        raise StudentError(f"{config_file} is not a valid model config.") from None
    if model_type != CandistStudentConfig.model_type:
        raise StudentError(f"{path} holds a {model_type!r} model, not a CanDist student; "
                           f"give the folder of a student run.")
    if not (path / "model.safetensors").is_file():
        raise StudentError(f"{path} has no model.safetensors: the save was interrupted; "
                           f"distill again.")
    return path


def load_model_dir(path: str | Path, *, device: str = "auto"
                   ) -> tuple[CandistStudentForSequenceClassification, object]:
    """The saved student and its tokenizer, in eval mode on ``device`` (``auto``: CUDA when
    present). Uses this package's copy of the model class: no remote code is run."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    path = check_model_dir(path)
    if (path / "head.pt").is_file() and (path / "labels.json").is_file():
        model = _load_legacy(path)   # the encoder's own weights sit next to head.pt
    else:
        model = CandistStudentForSequenceClassification.from_pretrained(path)
    # The tokenizer is a stock one (tokenizer_config.json names its class); the config's
    # auto_map must not make transformers ask to run the folder's code for it.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    finally:
        hf_logging.set_verbosity(verbosity)
    return model.to(pick_device(device)).eval(), tokenizer


def _load_legacy(path: Path) -> CandistStudentForSequenceClassification:
    """A student saved as encoder + ``head.pt`` + ``labels.json`` (before model dirs)."""
    from transformers import AutoModel
    meta = json.loads((path / "labels.json").read_text())
    labels, head = meta["labels"], meta.get("head", {})
    encoder = AutoModel.from_pretrained(path)
    config = student_config(encoder.config, labels, cosine=bool(head.get("cosine")),
                            scale=head.get("scale", 20.0), max_tokens=meta.get("max_length"))
    model = CandistStudentForSequenceClassification(config)
    model.encoder.load_state_dict(encoder.state_dict())
    model.head.load_state_dict(torch.load(path / "head.pt", map_location="cpu"))
    return model


def zip_bytes(path: str | Path) -> bytes:
    """The model folder as a zip (the app's download), files under the folder's name."""
    path = Path(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            archive.write(file, Path(path.name) / file.relative_to(path))
    return buffer.getvalue()
