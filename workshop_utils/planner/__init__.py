"""Build, adapt or buy (module 09): a planner that prices every way to get a model, with the course's calculators.

`inputs`: published figures, prices, the scenario, the open bases. `calculators`: FLOPs, GPU-hours, fine-tuning
memory, the optimal pre-training size, serving. `options`: each option priced, the rules, the choice.
`views`: table, cost-of-ownership chart, sensitivity sweeps, the decision tree, an ipywidgets form.
CLI: `python -m workshop_utils.planner --scenario support-bot`.
"""

from .calculators import (
    Assumptions,
    ServingPlan,
    adapter_params,
    alpaca_mfu,
    chinchilla_tokens,
    finetune_bytes,
    gpu_hours,
    llama2_7b_mfu,
    serving_plan,
    training_flops_per_token,
)
from .inputs import EXAMPLE_PRICES, Prices, Scenario, base_model, model_names, published, scenarios
from .options import LABELS, OPTIONS, Option, Recommendation, exclusion, plan, price_options, recommend
from .views import (
    flips,
    form,
    options_table,
    plot_decision_tree,
    plot_sensitivity,
    plot_tco,
    price_sensitivity,
    sensitivity,
)

__all__ = [
    "EXAMPLE_PRICES", "LABELS", "OPTIONS", "Assumptions", "Option", "Prices", "Recommendation", "Scenario",
    "ServingPlan", "adapter_params", "alpaca_mfu", "base_model", "chinchilla_tokens", "exclusion", "finetune_bytes",
    "gpu_hours", "llama2_7b_mfu", "model_names", "plan", "price_options", "published", "recommend", "scenarios",
    "serving_plan", "training_flops_per_token", "flips", "form", "options_table", "plot_decision_tree",
    "plot_sensitivity", "plot_tco", "price_sensitivity", "sensitivity",
]  # fmt: skip
