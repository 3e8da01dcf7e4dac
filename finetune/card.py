"""The adapter card (README.md): base model, dataset and its manifest hash, the prompt format, every hyper-parameter."""

from __future__ import annotations

import json

import jinja2

from .config import FinetuneConfig
from .conversation import ConversationFormat

_BODY = jinja2.Template(
    """
# LoRA adapter for {{ base }}

Trained with `flan-mini finetune` on {{ dataset.source }}{% if dataset.revision %} (revision {{ dataset.revision }}){% endif %}.

| | |
|---|---|
| base model | `{{ base }}`{% if config.base_model.revision %} @ `{{ config.base_model.revision }}`{% endif %} |
| dataset | `{{ dataset.source }}` ({{ dataset.kind }}, split `{{ dataset.split }}`, {{ dataset.rows }} rows) |
| dataset manifest sha256 | {% if dataset.manifest_sha256 %}`{{ dataset.manifest_sha256 }}`{% else %}none (no manifest.json found with the dataset){% endif %} |
| conversation format | `{{ fmt.name }}` (sha256 `{{ fmt_sha }}`) |
| tokenizer | `{{ summary.tokenizer.source }}`, mode `{{ summary.tokenizer.mode }}` ({{ summary.tokenizer["class"] }}) |
| trainable parameters | {{ "{:,}".format(summary.parameters.trainable) }} of {{ "{:,}".format(summary.parameters.total) }} |
| optimizer steps | {{ summary.steps }} |
| first / last logged loss | {{ loss(summary.first_logged_loss) }} / {{ loss(summary.last_logged_loss) }} |
| evaluation loss | {{ loss(summary.eval_loss) }} |

## Prompt format

Every prompt must use the format the adapter was trained in. It is stored in `conversation_format.json` and as
the tokenizer's chat template (`tokenizer.apply_chat_template(messages, add_generation_prompt=True)`):

```
{{ example }}
```

The loss covered only the assistant replies and the `{{ fmt.sep2 }}` closing each of them.

Tokenization (also in `tokenization.json`; `spm` is the legacy LLaMA encoding Vicuna and Flacuna trained with):

```json
{{ tokenization }}
```

```json
{{ fmt_json }}
```

## Data

Rows read: {{ stats.rows }}. Outcome per row (rows longer than {{ stats.max_length }} tokens are cut at the end
of the last whole round that fits; "dropped" rows were not trained on):

| outcome | rows |
|---|---|
{% for name, count in stats.outcomes.items() %}| {{ name }} | {{ count }} |
{% endfor %}
Training split: {{ stats.train.rows }} rows, {{ "{:,}".format(stats.train.tokens) }} tokens of which {{ "{:,}".format(stats.train.label_tokens) }} carry the loss.
{% if stats.eval %}Evaluation split: {{ stats.eval.rows }} rows ({{ config.dataset.eval_share }} of the data, seed {{ config.dataset.eval_seed }}).{% endif %}

## Hyper-parameters

```json
{{ hyper }}
```

## Use

```
flan-mini generate {{ "<this folder or repo>" }} "Your question"
```

or with PEFT: `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{{ base }}"), "<this folder>")`.

Library versions: {% for name, v in summary.versions.items() %}{{ name }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}.
""".lstrip("\n"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def _loss(entry: dict | None) -> str:
    return f"{entry['loss']:.4f} (step {entry['step']})" if entry else "n/a"


def adapter_card(config: FinetuneConfig, fmt: ConversationFormat, summary: dict) -> str:
    from huggingface_hub import ModelCardData

    dataset = summary["dataset"]
    base = summary["base_model"]["path"]
    header = ModelCardData(
        base_model=base if summary["base_model"]["hub"] else None,
        library_name="peft",
        pipeline_tag="text-generation",
        tags=["lora", "flan-mini", fmt.name],
        datasets=[dataset["source"]] if dataset["kind"] == "hub" else None,
    )
    example, _ = fmt.render([("user", "What is 2 + 2?"), ("assistant", "4."), ("user", "And 3 + 3?")])
    example += f"{fmt.assistant_role}:"
    hyper = {k: v for k, v in config.model_dump(mode="json").items() if k in ("base_model", "lora", "training", "dataset")}
    body = _BODY.render(
        base=base,
        dataset=dataset,
        config=config,
        fmt=fmt,
        fmt_sha=fmt.sha256(),
        fmt_json=json.dumps(fmt.to_dict(), indent=2),
        example=example,
        summary=summary,
        stats=summary["data"],
        hyper=json.dumps(hyper, indent=2),
        tokenization=json.dumps(summary["tokenizer"], indent=2),
        loss=_loss,
    )
    return f"---\n{header.to_yaml()}\n---\n\n{body}"
