"""The numbers and statements the papers report, in one place (reports, experiments and
tools read them from here). Light: no JAX import.

Sources: OPEN (Goldie et al. 2024, `../shared/papers/001_*`; the Adam returns are the
multi-task normalisers of the OPEN reference code, spec `agents_and_meta.md` section 4)
and Optim4RL (Lan et al., `../shared/papers/000_*`, Table 1 and Figure 4).
"""

#: Adam's final return per environment, the normaliser of OPEN's multi-task fitness and of
#: its Figure 3 (OPEN reference code; spec agents_and_meta.md section 4).
OPEN_ADAM_RETURNS = {
    "asterix": 15.04,
    "freeway": 61.84,
    "breakout": 50.08,
    "space_invaders": 167.09,
    "ant": 6517.3,
}

#: What OPEN Figure 2 shows, per environment (the figure's numbers are not in the text).
OPEN_FIGURE2 = {
    "asterix": "OPEN significantly outperforms every baseline (Figure 2; Adam's final "
    f"return in the reference code: {OPEN_ADAM_RETURNS['asterix']}).",
    "breakout": "OPEN significantly outperforms every baseline (Figure 2; Adam: "
    f"{OPEN_ADAM_RETURNS['breakout']}).",
    "freeway": "OPEN is comparable to the best baselines, not significantly better "
    "(Figure 2: three of the four MinAtar games are significant wins; Adam: "
    f"{OPEN_ADAM_RETURNS['freeway']}).",
    "space_invaders": "OPEN significantly outperforms every baseline (Figure 2; Adam: "
    f"{OPEN_ADAM_RETURNS['space_invaders']}).",
    "ant": "OPEN beats both other learned optimizers; against Adam the CIs overlap "
    f"(Figure 2; Adam: {OPEN_ADAM_RETURNS['ant']}). Kan et al.'s re-evaluation finds "
    "parity with Adam.",
}

#: OPEN Figure 4: the gridworld OPEN in its training distribution.
OPEN_FIGURE4_IN_DISTRIBUTION = "OPEN beats tuned Adam in distribution (Figure 4)."

#: Optim4RL's final returns (10 runs, mean ± s.e.), Table 1 "With Pipeline Training";
#: Fig. 4 plots Adam and RMSProp "on par" without printing numbers.
OPTIM4RL_TABLE1_PIPELINE = {
    "small_dense_short": "11.31 ± 0.07",
    "big_dense_long": "23.14 ± 0.33",
}
#: Optim4RL Table 1 "Without Pipeline Training".
OPTIM4RL_TABLE1_NO_PIPELINE = {
    "small_dense_short": "11.15 ± 0.10",
    "big_dense_long": "23.04 ± 0.41",
}
#: About what Adam and RMSProp reach in Optim4RL Figure 4 (read off the plot, "on par"
#: with Optim4RL): the level tuned A2C baselines should reach at 3e7 steps.
OPTIM4RL_A2C_BASELINE_ABOUT = {"small_dense_short": 11.0, "big_dense_long": 23.0}
