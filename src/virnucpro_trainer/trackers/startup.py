"""Start-up checks of the trackers a run asks for, made before any data is read: each tracker's
package is installed, its tracking location can be written or reached. Every problem is one line
naming the setting and what to do; all of them are raised together as one UserError.

These checks cost milliseconds (no tracker package is imported); connecting, creating the run and
logging the parameters happen in the trackers' thread (worker.py), which training waits for."""

from __future__ import annotations

import importlib.util
import netrc
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import DictConfig

from virnucpro_trainer.errors import UserError

TRACKERS = ("tensorboard", "mlflow", "wandb")  # in the order they are started
TIMEOUT_S = 5.0  # for reaching a tracking server at start-up
WANDB_URL = "https://api.wandb.ai"
SQLITE_MAGIC = b"SQLite format 3\x00"


def chosen(cfg: DictConfig) -> list[str]:
    """The trackers switched on in `cfg.logger`."""
    return [name for name in TRACKERS if cfg.logger[name]]


def tracking_uri(cfg: DictConfig, launch_dir: Path) -> str:
    """logger.tracking_uri with a relative SQLite or file path made absolute against the launch
    directory; null: the SQLite database outputs/mlflow.db there."""
    uri = cfg.logger.tracking_uri or f"sqlite:///{launch_dir / 'outputs/mlflow.db'}"
    for prefix in ("sqlite:///", "file:"):
        if uri.startswith(prefix) and not uri.startswith(f"{prefix}/"):
            return f"{prefix}{(launch_dir / uri[len(prefix) :]).resolve()}"
    return uri


def check_trackers(cfg: DictConfig, launch_dir: Path) -> None:
    """Raise a UserError listing every problem that would stop a chosen tracker."""
    problems = []
    for name in chosen(cfg):
        if importlib.util.find_spec(name) is None:
            problems.append(
                f"logger={name} needs the {name} package, which is not installed: "
                f'pip install -e ".[{name}]"'
            )
        elif name == "mlflow":
            problems += _mlflow_problems(tracking_uri(cfg, launch_dir))
        elif name == "wandb" and cfg.logger.mode == "online":
            problems += _wandb_online_problems()
    if problems:
        raise UserError("cannot start the trackers:\n  " + "\n  ".join(problems))


def _mlflow_problems(uri: str) -> list[str]:
    key = f"logger.tracking_uri={uri}"
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if (problem := _writable_folder(path.parent, key)) is not None:
            return [problem]
        if path.is_file() and path.stat().st_size and not _is_sqlite(path):
            return [f"{key}: {path} is not an SQLite database; name a new or an MLflow .db file"]
    elif uri.startswith("file:"):
        problem = _writable_folder(Path(uri.removeprefix("file:")), key)
        return [problem] if problem is not None else []
    elif uri.startswith(("http://", "https://")):
        reason = unreachable(f"{uri.rstrip('/')}/health")
        if reason is not None:
            return [
                f"{key}: cannot reach the MLflow tracking server ({reason}); start it (e.g. "
                "mlflow server --backend-store-uri sqlite:///outputs/mlflow.db --port 5000) or "
                "set logger.tracking_uri to a reachable server or to sqlite:///<file>"
            ]
    return []


def _wandb_online_problems() -> list[str]:
    base = os.environ.get("WANDB_BASE_URL", WANDB_URL)
    offline = "or use logger.mode=offline (no account or network) and wandb sync later"
    reason = unreachable(base)
    if reason is not None:
        return [f"logger.mode=online: cannot reach W&B at {base} ({reason}); {offline}"]
    keys = ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE")
    if not (any(map(os.environ.get, keys)) or _netrc_has(urlparse(base).hostname or "")):
        return [f"logger.mode=online needs a W&B login: run `wandb login` first, {offline}"]
    return []


def _writable_folder(folder: Path, key: str) -> str | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return f"{key}: cannot create {folder} ({err.strerror or err})"
    if not os.access(folder, os.W_OK):
        return f"{key}: cannot write into {folder}"
    return None


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def unreachable(url: str) -> str | None:
    """Why `url` cannot be reached (None when a server answers, whatever its HTTP status)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S):
            return None
    except urllib.error.HTTPError:
        return None  # a server answered
    except (urllib.error.URLError, OSError, ValueError) as err:
        return str(getattr(err, "reason", None) or err)


def _netrc_has(host: str) -> bool:
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False
