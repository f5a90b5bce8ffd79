"""The Optim4RL experiments (Lan et al., "Learning to Optimize for Reinforcement Learning"),
one module per figure or table."""
