"""Analyses of what the optimizers do, as experiments: the Optim4RL gradient analyses
(Figures 1, 2, 5-6; Appendix E) and OPEN's behaviour analyses (Appendix F)."""
