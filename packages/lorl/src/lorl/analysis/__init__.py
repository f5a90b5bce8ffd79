"""The Optim4RL gradient analyses (Lan et al., Sections 4.1-4.2, 5.2, 6.2, Appendix E) and
OPEN's behaviour analyses (Goldie et al., Appendix F).

- Gradient collection with bounded memory from any training run:
  [`lorl.analysis.GradientCollector`][] wraps an optimizer and keeps a uniform
  (bottom-k reservoir) sample per training stage plus per-element traces;
  [`lorl.analysis.collect_rl_gradients`][] (A2C, PPO) and
  [`lorl.analysis.collect_supervised_gradients`][] (scikit-learn digits) run it.
- Distributions: [`lorl.analysis.log10_magnitude`][], [`lorl.analysis.histogram_mass`][],
  plots of stages (Figure 1) and overlays (Figures 5-6), and
  [`lorl.analysis.wasserstein_to_whole`][] (Table 11).
- What an optimizer does with gradients of known signal-to-noise ratio:
  [`lorl.analysis.step_size_probe`][]; how far meta-training moved a learned optimizer:
  [`lorl.analysis.relative_change`][].
- A meta-gradient's signal-to-noise ratio over training units
  ([`lorl.analysis.gradient_snr`][]), finite-difference checks of it
  ([`lorl.analysis.directional_derivatives`][]) and saturation of a learned optimizer's GRU
  gates ([`lorl.analysis.gru_saturation`][]).
- OPEN's behaviour analyses (OPEN Appendix F) over a PPO run:
  [`lorl.analysis.behaviour_curves`][] (update-gradient and update-momentum cosines,
  update size, learned-noise weight, dormancy per layer).
- The identity-function experiment (Figure 2): [`lorl.analysis.train_identity`][],
  [`lorl.analysis.sign_log_features`][], [`lorl.analysis.identity_accuracy`][].

See `docs/lorl/analyses.md`.
"""

from ._behaviour import behaviour_curves as behaviour_curves
from ._collect import (
    CollectorState as CollectorState,
    GradientCollector as GradientCollector,
    GradientSample as GradientSample,
    flatten_gradients as flatten_gradients,
    reservoir_merge as reservoir_merge,
)
from ._distributions import (
    LOG_EPS as LOG_EPS,
    LOG_RANGE as LOG_RANGE,
    histogram_mass as histogram_mass,
    log10_magnitude as log10_magnitude,
    overlap as overlap,
    plot_overlay as plot_overlay,
    plot_stage_histograms as plot_stage_histograms,
    stage_indices as stage_indices,
    wasserstein_to_whole as wasserstein_to_whole,
)
from ._errors import AnalysisError as AnalysisError
from ._identity import (
    SIGN_LOG_EPS as SIGN_LOG_EPS,
    TOLERANCE as TOLERANCE,
    IdentityRNN as IdentityRNN,
    identity_accuracy as identity_accuracy,
    random_control_data as random_control_data,
    sign_log_features as sign_log_features,
    train_identity as train_identity,
)
from ._metagradient import (
    directional_derivatives as directional_derivatives,
    gradient_snr as gradient_snr,
    gru_saturation as gru_saturation,
)
from ._probe import (
    PROBE_SCALE as PROBE_SCALE,
    PROBE_SNRS as PROBE_SNRS,
    relative_change as relative_change,
    step_size_probe as step_size_probe,
)
from ._training import (
    DigitsCNN as DigitsCNN,
    collect_rl_gradients as collect_rl_gradients,
    collect_supervised_gradients as collect_supervised_gradients,
    load_digits_data as load_digits_data,
    optimizer_calls as optimizer_calls,
)
