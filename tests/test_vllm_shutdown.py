"""vLLM's engine stopped before Python exits (culturespa.inference.vllm_shutdown), with stand-ins
for vLLM's client: a thread that runs until told to stop, as vLLM's output thread does.

The real engine is checked in the vLLM suite (tests/test_vllm_cpu.py,
`test_exit_hook_stops_the_output_thread_of_a_real_engine`).
"""

from __future__ import annotations

import sys
import threading
import types

from culturespa.inference import vllm_shutdown
from culturespa.inference.vllm_shutdown import OUTPUT_THREAD, shutdown_engine


class FakeClient:
    """vLLM's multi-process client as far as stopping goes: `shutdown()` signals its thread."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.shutdowns = 0
        self.output_queue_thread = threading.Thread(
            target=self._receive, name=OUTPUT_THREAD, daemon=True
        )
        self.output_queue_thread.start()

    def _receive(self) -> None:
        self.stop.wait(10)
        self.stop.wait(0.05)  # still freeing what it received after the signal

    def shutdown(self) -> None:
        self.shutdowns += 1
        self.stop.set()


def _llm_around(client: FakeClient) -> types.SimpleNamespace:
    return types.SimpleNamespace(llm_engine=types.SimpleNamespace(engine_core=client))


def test_shutdown_engine_waits_for_the_output_thread_to_finish():
    client = FakeClient()
    shutdown_engine(_llm_around(client))
    assert client.shutdowns == 1
    assert not client.output_queue_thread.is_alive()


def test_shutdown_engine_takes_an_engine_without_a_thread_or_a_client():
    shutdown_engine(types.SimpleNamespace(llm_engine=types.SimpleNamespace(engine_core=None)))
    shutdown_engine(object())

    class InProcess:  # vLLM's in-process engine: a shutdown, no output thread
        stopped = False

        def shutdown(self) -> None:
            self.stopped = True

    engine = InProcess()
    shutdown_engine(_llm_around(engine))
    assert engine.stopped


def test_a_failing_shutdown_is_a_warning_and_the_thread_is_still_awaited(caplog):
    client = FakeClient()

    def dead() -> None:
        client.stop.set()
        raise RuntimeError("engine core died")

    client.shutdown = dead
    shutdown_engine(_llm_around(client))
    assert "engine core died" in caplog.text
    assert not client.output_queue_thread.is_alive()


def test_exit_hook_stops_every_live_client_of_vllm(monkeypatch):
    """The hook finds vLLM's clients among live objects (vLLM's class, here a stand-in module)."""
    core_client = types.ModuleType("vllm.v1.engine.core_client")
    core_client.MPClient = FakeClient
    for name in ("vllm", "vllm.v1", "vllm.v1.engine"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "vllm.v1.engine.core_client", core_client)
    clients = [FakeClient(), FakeClient()]
    vllm_shutdown._stop_live_engines()
    assert [c.shutdowns for c in clients] == [1, 1]
    assert not any(c.output_queue_thread.is_alive() for c in clients)


def test_exit_hook_does_nothing_where_vllm_is_not_loaded(monkeypatch):
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    client = FakeClient()
    vllm_shutdown._stop_live_engines()
    assert client.shutdowns == 0
    client.shutdown()
    client.output_queue_thread.join()


def test_exit_hook_is_registered_once(monkeypatch):
    registered = []
    monkeypatch.setattr(vllm_shutdown, "_hook_installed", False)
    monkeypatch.setattr(vllm_shutdown.atexit, "register", registered.append)
    vllm_shutdown.install_exit_hook()
    vllm_shutdown.install_exit_hook()
    assert registered == [vllm_shutdown._stop_live_engines]


def test_evaluation_stops_each_seeds_engine_before_the_next_starts(monkeypatch, tiny_model_dir):
    """`culturespa eval --backend vllm --seed 1 2`: a new engine per seed (vLLM seeds at start-up);
    the previous one is stopped first, and the last one before the call returns."""
    from culturespa.evaluation import run

    events: list[str] = []
    clients: list[FakeClient] = []

    def load(model, backend, args, batch_size, device):
        for i, client in enumerate(clients):
            events.append(f"engine {i} alive: {client.output_queue_thread.is_alive()}")
        clients.append(FakeClient())
        return types.SimpleNamespace(model=_llm_around(clients[-1]))

    monkeypatch.setattr(run, "_select_tasks", lambda *a: (None, ["gen"], ["gen"]))
    monkeypatch.setattr(run, "_load_model", load)
    monkeypatch.setattr(run, "_evaluate_once", lambda lm, names, *a: {"tasks": names})
    options = run.EvalOptions(backend="vllm", device="cpu")
    runs = run.evaluate_seeds(str(tiny_model_dir), "gen", [1, 2], options)
    assert runs == [{"tasks": ["gen"]}, {"tasks": ["gen"]}]
    assert events == ["engine 0 alive: False"]
    assert [c.shutdowns for c in clients] == [1, 1]
    assert not clients[1].output_queue_thread.is_alive()
