"""Where files live: bundled resources (from source or a frozen PyInstaller build) and
the user's data folder. The one place that knows about `sys._MEIPASS`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "resnet-studio"
DEFAULT_MODEL_NAME = "mnist-resnet"


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def bundle_root() -> Path:
    """The folder holding `model_weights/` and `resources/`."""
    if is_frozen():
        return Path(sys._MEIPASS)  # type: ignore[attr-defined]
    return Path(__file__).resolve().parents[2]


def project_root() -> Path | None:
    """The source checkout (None when frozen)."""
    return None if is_frozen() else bundle_root()


def resource_path(*parts: str) -> Path:
    """A bundled file under `resources/`."""
    return bundle_root().joinpath("resources", *parts)


def weights_dir() -> Path:
    return bundle_root() / "model_weights"


def default_model_path() -> Path:
    return weights_dir() / f"{DEFAULT_MODEL_NAME}.safetensors"


def user_data_dir() -> Path:
    """Per-user data (trained models, checkpoints, downloads); RESNET_STUDIO_HOME wins."""
    env = os.environ.get("RESNET_STUDIO_HOME")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / APP_NAME


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def user_cache_dir() -> Path:
    """Per-machine facts the app measured and may measure again (e.g. which precision is
    faster here); deleting it costs only time. RESNET_STUDIO_CACHE wins, then
    RESNET_STUDIO_HOME/cache, then the platform's cache folder."""
    env = os.environ.get("RESNET_STUDIO_CACHE")
    if env:
        return Path(env)
    if os.environ.get("RESNET_STUDIO_HOME"):
        return user_data_dir() / "cache"
    if sys.platform == "win32":
        return user_data_dir() / "cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / APP_NAME
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / APP_NAME
