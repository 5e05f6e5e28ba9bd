"""What a plugin may import from zoo: this module and ``zoo_core`` itself, nothing else.

Everything else in zoo_core is zoo's own and may change between releases; the names here change only with a
deprecation. zoo's built-in plugins use this module alone (``tests/test_names.py`` checks), so what they can
do, a third-party plugin can do. docs/plugins.md ("The plugin API") says what each group is for.

Importing it costs nothing: a name's module is imported when the name is first taken (zoo's warm commands run
the registry's hook, and it needs only a few of these), and none imports torch, timm or PIL until a function
needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

# module -> the names it gives; "name=attr" where the name here is not the module's own
_FROM: dict[str, str] = {
    # errors: raise these; zoo prints their first line and exits non-zero
    "zoo_core.errors": "Interrupted PluginError UnknownNameError UsageError WeightsError ZooError first_line",
    # names and weights: the grammar, the weights schema, the catalogue
    "zoo_core.names": "NAME_MAX TAG_MAX TAG_RE ModelRef check_tag parse",
    "zoo_core.weights": "INTERPOLATIONS PREPROCESSING_FIELDS Preprocessing SchemaError WeightsInfo "
                        "check_preprocessing validate_tag",
    "zoo_core.plugins": "get_catalogue refresh_weights add_plugin remove_plugin reset_plugins=reset",
    # models: adapting a built model, counting it, finding its layers
    "zoo_core.adapt": "adapt_input_channels reset_classifier",
    "zoo_core.model_stats": "count_flops count_params",
    "zoo_core.features": "spatial_layers",
    # data: datasets, batches, transforms, images
    "zoo_core.datasets": "Dataset Split batches convert_channels from_arrays list_datasets load_dataset num_batches "
                         "parse_options shard_indices validate",
    "zoo_core.data_config": "create_transform describe override resize_sides resolve_data_config",
    "zoo_core.images": "image_mode load_image to_true_colours",
    # training: the job a trainer gets, devices, precision, torchrun
    "zoo_core.trainers": "Reporter TrainJob TrainingError",
    "zoo_core.devices": "PRECISIONS autocast check_precision keep_freed_cpu_memory numerics resolve_device "
                        "set_numerics",
    "zoo_core.distributed": "CommunicationError Distributed brief joined peer_failure timeout_from_environment",
    # files: zoo's folders, writes that a kill cannot tear, locks, schema-checked JSON records
    "zoo_core.paths": "cache_dir downloads_dir registry_dir runs_dir",
    "zoo_core.atomic_io": "atomic_write_bytes atomic_write_json atomic_write_text remove_torn_writes",
    "zoo_core.file_lock": "LockBusy file_lock",
    "zoo_core.records": "records=",  # the module itself: records.obj, records.load, ...
    "zoo_core.environment": "environment utc_now",
    # commands: zoo's options, output and tables, and zoo's own command line (for tests)
    "zoo_core.cli_options": "Choice data_options deprecated device_option img_size_option json_option "
                            "model_argument precision_option the_model",
    "zoo_core.console": "command_args command_line echo_json given",
    "zoo_core.output": "check_output check_plot image_format write_output",
    "zoo_core.table": "format_table",
    "zoo_core.cli": "cli_main=main",
}  # fmt: skip
_WHERE: dict[str, tuple[str, str]] = {
    name: (module, attr if sep else name)
    for module, names in _FROM.items()
    for name, sep, attr in (item.partition("=") for item in names.split())
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"zoo_core.plugin_api has no {name!r}; docs/plugins.md lists what it has")
    module, attr = _WHERE[name]
    found = importlib.import_module(module)
    value = getattr(found, attr) if attr else found
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__
