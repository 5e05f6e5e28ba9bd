"""What a plugin may import from zoo: this module and ``zoo_core`` itself, nothing else.

Everything else in zoo_core is zoo's own and may change between releases; the names here change only with a
deprecation. zoo's built-in plugins use this module alone (``tests/test_names.py`` checks), so what they can
do, a third-party plugin can do. docs/plugins.md ("The plugin API") says what each group is for.

Importing it is cheap: none of these modules imports torch, timm or PIL until a function needs them.
"""

from __future__ import annotations

from zoo_core import records
from zoo_core.adapt import adapt_input_channels, reset_classifier
from zoo_core.atomic_io import atomic_write_bytes, atomic_write_json, atomic_write_text, remove_torn_writes
from zoo_core.cli import main as cli_main
from zoo_core.cli_options import (
    Choice,
    data_options,
    deprecated,
    device_option,
    img_size_option,
    json_option,
    model_argument,
    precision_option,
    the_model,
)
from zoo_core.console import command_args, command_line, echo_json, given
from zoo_core.data_config import create_transform, describe, override, resize_sides, resolve_data_config
from zoo_core.datasets import (
    Dataset,
    Split,
    batches,
    convert_channels,
    from_arrays,
    list_datasets,
    load_dataset,
    num_batches,
    parse_options,
    shard_indices,
    validate,
)
from zoo_core.devices import (
    PRECISIONS,
    autocast,
    check_precision,
    keep_freed_cpu_memory,
    numerics,
    resolve_device,
    set_numerics,
)
from zoo_core.distributed import CommunicationError, Distributed, brief, joined, peer_failure, timeout_from_environment
from zoo_core.environment import environment, utc_now
from zoo_core.errors import Interrupted, PluginError, UnknownNameError, UsageError, WeightsError, ZooError, first_line
from zoo_core.features import spatial_layers
from zoo_core.file_lock import LockBusy, file_lock
from zoo_core.images import image_mode, load_image, to_true_colours
from zoo_core.model_stats import count_flops, count_params
from zoo_core.names import NAME_MAX, TAG_MAX, TAG_RE, ModelRef, check_tag, parse
from zoo_core.output import check_output, check_plot, image_format, write_output
from zoo_core.paths import cache_dir, downloads_dir, registry_dir, runs_dir
from zoo_core.plugins import add_plugin, get_catalogue, refresh_weights, remove_plugin
from zoo_core.plugins import reset as reset_plugins
from zoo_core.table import format_table
from zoo_core.trainers import Reporter, TrainingError, TrainJob
from zoo_core.weights import (
    INTERPOLATIONS,
    PREPROCESSING_FIELDS,
    Preprocessing,
    SchemaError,
    WeightsInfo,
    check_preprocessing,
    validate_tag,
)

__all__ = [
    # errors: raise these; zoo prints their first line and exits non-zero
    "Interrupted", "PluginError", "UnknownNameError", "UsageError", "WeightsError", "ZooError", "first_line",
    # names and weights: the grammar and the weights schema
    "NAME_MAX", "TAG_MAX", "TAG_RE", "ModelRef", "check_tag", "parse",
    "INTERPOLATIONS", "PREPROCESSING_FIELDS", "Preprocessing", "SchemaError", "WeightsInfo", "check_preprocessing",
    "validate_tag", "get_catalogue", "refresh_weights", "reset_plugins", "add_plugin", "remove_plugin",
    # models: adapting a built model, counting it, finding its layers
    "adapt_input_channels", "reset_classifier", "count_flops", "count_params", "spatial_layers",
    # data: datasets, batches, transforms, images
    "Dataset", "Split", "batches", "convert_channels", "from_arrays", "list_datasets", "load_dataset",
    "num_batches", "parse_options", "shard_indices", "validate",
    "create_transform", "describe", "override", "resize_sides", "resolve_data_config",
    "image_mode", "load_image", "to_true_colours",
    # training: the job a trainer gets, devices, precision, torchrun
    "Reporter", "TrainJob", "TrainingError",
    "PRECISIONS", "autocast", "check_precision", "keep_freed_cpu_memory", "numerics", "resolve_device",
    "set_numerics",
    "CommunicationError", "Distributed", "brief", "joined", "peer_failure", "timeout_from_environment",
    # files: zoo's folders, writes that a kill cannot tear, locks, schema-checked JSON records
    "cache_dir", "downloads_dir", "registry_dir", "runs_dir",
    "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "remove_torn_writes",
    "LockBusy", "file_lock", "records", "environment", "utc_now",
    # commands: zoo's options, output and tables, and zoo's own command line (for tests)
    "Choice", "data_options", "deprecated", "device_option", "img_size_option", "json_option", "model_argument",
    "precision_option", "the_model",
    "command_args", "command_line", "echo_json", "given",
    "check_output", "check_plot", "image_format", "write_output", "format_table", "cli_main",
]  # fmt: skip
