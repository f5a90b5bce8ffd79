"""The OPEN experiments (Goldie et al., "Can Learned Optimization Make Reinforcement
Learning Less Difficult?", NeurIPS 2024), one module per figure.

Catalogue module: registers its experiment on import."""
