"""Analyses of what the optimizers do (OPEN Appendix F), as experiments."""
