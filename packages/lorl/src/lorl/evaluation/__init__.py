"""Evaluate any optimizer the way the papers do: fresh agents on many seeds (vmapped and
sharded over devices), the papers' agent settings per environment, the papers' tuned
baselines by name, published OPEN weights, saved learned optimizers.

```python
from lorl.evaluation import evaluate

adam = evaluate("adam", "small_dense_short", seeds=10)  # A2C; lr by grid search first
open_ = evaluate("open:breakout", "breakout", seeds=4, timesteps=500_000)  # PPO, OPEN
print(adam.final_returns, open_.returns.shape)
```
"""

from ._envs import (
    GYMNAX_ALIASES as GYMNAX_ALIASES,
    EnvSpec as EnvSpec,
    default_agent_config as default_agent_config,
    env_spec as env_spec,
    known_env_names as known_env_names,
    require_brax as require_brax,
)
from ._evaluate import (
    LEVEL_KEY_SALT as LEVEL_KEY_SALT,
    EvaluationResult as EvaluationResult,
    agent_config_for as agent_config_for,
    evaluate as evaluate,
    tune_learning_rate as tune_learning_rate,
)
from ._optimizers import (
    CARTPOLE_ADAM_LR as CARTPOLE_ADAM_LR,
    load_optimizer as load_optimizer,
    resolve_optimizer as resolve_optimizer,
    save_optimizer as save_optimizer,
)
from ._store import (
    ResultStore as ResultStore,
    evaluate_with_store as evaluate_with_store,
    optimizer_identity as optimizer_identity,
)
from ._tuning import (
    DEFAULT_TUNING_SEEDS as DEFAULT_TUNING_SEEDS,
    OPTIM4RL_LR_GRID as OPTIM4RL_LR_GRID,
    TUNING_SEED_OFFSET as TUNING_SEED_OFFSET,
    LearningRateSearch as LearningRateSearch,
    TuningResult as TuningResult,
    best_learning_rate as best_learning_rate,
)
