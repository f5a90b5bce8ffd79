"""The comparative study's experiments (`../shared/papers/003_*`): learned vs
hand-designed optimizers across MinAtar and Ant."""
