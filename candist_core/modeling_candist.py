"""The CanDist student as a transformers model: an encoder, masked mean pooling, and a
linear or cosine head.

This file is copied into every saved student directory (next to ``config.json``), so
``AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)`` and
``pipeline("text-classification", model=DIR, trust_remote_code=True)`` load the student with
transformers and torch only: no CanDist code installed. It imports nothing from CanDist.

Why not a stock head: every stock ``*ForSequenceClassification`` of a BERT-style encoder
reads the first token (``[CLS]``), while the student (like all-MiniLM-L6-v2 itself) reads the
mean of all token states; no stock class averages a BERT encoder's tokens under the attention
mask, and a post-hoc rewrite into one is only approximate. This class is exact: the
state-dict keys are the trainer's own (``encoder.*``, ``head.*``), so the saved weights are
the trained ones, unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class CandistStudentConfig(PretrainedConfig):
    """``encoder``: the encoder's own config as a dict (any transformers encoder);
    ``head``: "linear" (logits = W h + b) or "cosine" (logits = W (scale * h / |h|) + b);
    ``max_tokens``: the length the student was trained and scored at. Longer inputs are cut
    to it, keeping the closing special token, as in training."""

    model_type = "candist_student"

    def __init__(self, encoder: dict | None = None, head: str = "linear",
                 head_scale: float = 20.0, head_dropout: float = 0.1,
                 max_tokens: int | None = None, **kwargs):
        self.encoder = dict(encoder or {})
        self.head = head
        self.head_scale = float(head_scale)
        self.head_dropout = float(head_dropout)
        self.max_tokens = max_tokens
        super().__init__(**kwargs)


def cut_to(input_ids: torch.Tensor, attention_mask: torch.Tensor, max_tokens: int | None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded batch cut to ``max_tokens`` columns; a row that was longer keeps its
    last real token (the closing special token) in the last column."""
    if not max_tokens or input_ids.shape[1] <= max_tokens:
        return input_ids, attention_mask
    lengths = attention_mask.long().sum(1)
    last = input_ids.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    ids = input_ids[:, :max_tokens].clone()
    mask = attention_mask[:, :max_tokens]
    long_rows = lengths > max_tokens
    ids[long_rows, max_tokens - 1] = last[long_rows]
    return ids, mask


class CandistStudentForSequenceClassification(PreTrainedModel):
    config_class = CandistStudentConfig
    base_model_prefix = "encoder"

    def __init__(self, config: CandistStudentConfig):
        super().__init__(config)
        encoder_config = AutoConfig.for_model(**config.encoder)
        self.encoder = AutoModel.from_config(encoder_config)
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(encoder_config.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module):
        if module is self.head:
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
               ) -> torch.Tensor:
        """Mean of the token states under the attention mask."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        input_ids, attention_mask = cut_to(input_ids, attention_mask, self.config.max_tokens)
        hidden = self.encoder(input_ids=input_ids,
                              attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.config.head == "cosine":
            return self.head(self.dropout(F.normalize(pooled, dim=-1)) * self.config.head_scale)
        return self.head(self.dropout(pooled))

    def forward(self, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, return_dict: bool | None = None,
                **kwargs) -> SequenceClassifierOutput:
        # token_type_ids and friends are accepted and ignored: the student was trained on
        # single texts without them, as the encoder's defaults.
        logits = self.classify(self.pooled(input_ids, attention_mask))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float(), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)
