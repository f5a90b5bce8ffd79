"""Hand-designed baselines as optax transformations, with the papers' tuned values.

VeLO, a baseline in both papers, is not provided: its weights are not obtainable here.
"""

from .._baselines import (
    ADAM as ADAM,
    ENV_ALIASES as ENV_ALIASES,
    LION as LION,
    OPTIM4RL_A2C_AGENT_LR as OPTIM4RL_A2C_AGENT_LR,
    OPTIM4RL_A2C_GRADIENT_CLIP as OPTIM4RL_A2C_GRADIENT_CLIP,
    OPTIM4RL_A2C_LR_GRID as OPTIM4RL_A2C_LR_GRID,
    OPTIM4RL_LR as OPTIM4RL_LR,
    RMSPROP as RMSPROP,
    AdamPreset as AdamPreset,
    LionPreset as LionPreset,
    RMSPropPreset as RMSPropPreset,
    adam as adam,
    linear_annealing as linear_annealing,
    lion as lion,
    optim4rl_learning_rate as optim4rl_learning_rate,
    rmsprop as rmsprop,
    sgd as sgd,
)
