"""Run folders, typed configs with `key=value` overrides, and the errors of `lorl`."""

from ._config import (
    apply_overrides as apply_overrides,
    config_from_dict as config_from_dict,
    config_keys as config_keys,
    config_to_dict as config_to_dict,
)
from ._errors import (
    ConfigError as ConfigError,
    LorlError as LorlError,
    RunDirError as RunDirError,
    UnknownExperimentError as UnknownExperimentError,
    UnknownOverrideError as UnknownOverrideError,
)
from ._jsonable import to_jsonable as to_jsonable
from ._rundir import RUN_FORMAT as RUN_FORMAT, RunDir as RunDir, lorl_version as lorl_version
