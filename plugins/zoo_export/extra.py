"""The optional packages export needs (``pip install 'zoo[export]'``): one line saying what to install."""

from __future__ import annotations

from zoo_core.plugin_api import UsageError

PACKAGES = {"onnx": "onnx", "onnxscript": "onnxscript", "onnxruntime": "onnxruntime"}
INSTALL = "pip install 'zoo[export]' (onnx, onnxscript, onnxruntime)"


def require(*modules: str) -> None:
    """Import ``modules`` (default: all three) or raise one line naming the missing ones and the install."""
    import importlib

    missing = []
    for module in modules or tuple(PACKAGES):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(PACKAGES.get(module, module))
    if missing:
        raise UsageError(f"ONNX export and onnxruntime need {', '.join(missing)}: {INSTALL}")
