"""Shared machinery of the OPEN experiments (Goldie et al., NeurIPS 2024), imported by
them as `oc`: configuration pieces (`_settings`), the ES and evaluation stages
(`_stages`) and report helpers (`_report`).

Every OPEN experiment is: meta-train one or more learned optimizers by OpenAI-ES
([`lorl_meta.ESTrainer`][], checkpointed in the run folder so a killed run resumes where
it stopped), then evaluate them on fresh seeds against tuned hand-designed optimizers
through `lorl.evaluation`, then report IQM with 95% stratified bootstrap CIs
(`lorl.stats`) and return curves (`lorl.plots`).
"""

from .._stages import (
    concat_records as concat_records,
    eval_record as eval_record,
    evaluate_stage as evaluate_stage,
    stage_name as stage_name,
    stored_form as stored_form,
)
from ._report import (
    ProgressFn as ProgressFn,
    curves_plot as curves_plot,
    es_table as es_table,
    finite_scores as finite_scores,
    fmt as fmt,
    header as header,
    interval_table as interval_table,
    intervals_plot as intervals_plot,
    per_env_block as per_env_block,
)
from ._settings import (
    ADAM_NORMALISERS as ADAM_NORMALISERS,
    FIG2_PAPER as FIG2_PAPER,
    LEARNED as LEARNED,
    MINATAR as MINATAR,
    OPEN_VARIANTS as OPEN_VARIANTS,
    TABLE7 as TABLE7,
    TABLE7_GEN_USED as TABLE7_GEN_USED,
    TABLE7_MAX_GENS as TABLE7_MAX_GENS,
    AgentSettings as AgentSettings,
    ESSettings as ESSettings,
    EvalSettings as EvalSettings,
    SingleEnv as SingleEnv,
    base_agent as base_agent,
    baseline as baseline,
    baseline_tables as baseline_tables,
    check_baselines as check_baselines,
    check_common as check_common,
    check_learned as check_learned,
    check_population as check_population,
    cpu_es as cpu_es,
    make_env as make_env,
    make_learned as make_learned,
    minatar_cpu_agent as minatar_cpu_agent,
    preset_key as preset_key,
    require_brax as require_brax,
)
from ._stages import (
    es_stage as es_stage,
    es_trainer as es_trainer,
    load_trained as load_trained,
    optimizer_path as optimizer_path,
    train_seeds as train_seeds,
)
