"""Prometheus text for the self-hosted dialects, under each server's real metric names.

A router that spills over on queue depth reads exactly these gauges from real vLLM/SGLang/LMDeploy/
llama.cpp servers, so the emulator publishes the live running/waiting counts (plus a profile's extra
`queue_waiting`) under the same names (facts: `metrics` in vllm/sglang/lmdeploy/llamacpp.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.emulator.state import EmulatorState, Load
from tollway.providers import registry

# dialect -> (running gauge, prompt counter, generation counter, success counter): what only the emulator
# publishes; the waiting and KV-usage gauges spillover reads come from the dialect registry
_OWN_NAMES = {
    "vllm": ("vllm:num_requests_running", "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
             "vllm:request_success_total"),
    "sglang": ("sglang:num_running_reqs", "sglang:prompt_tokens_total", "sglang:generation_tokens_total",
               "sglang:num_requests_total"),
    "lmdeploy": ("lmdeploy:num_requests_running", "lmdeploy:prompt_tokens_total", "lmdeploy:generation_tokens_total",
                 "lmdeploy:request_success_total"),
    "llamacpp": ("llamacpp:requests_processing", "llamacpp:prompt_tokens_total", "llamacpp:tokens_predicted_total",
                 None),
}


def _names(dialect: str) -> tuple:
    """(running, waiting, [kv-usage], prompt, generation, success) metric names of `dialect`."""
    gauges = registry.DIALECTS[dialect].gauges
    assert gauges is not None, f"{dialect} has no gauges in the registry"
    running, prompt, generation, success = _OWN_NAMES[dialect]
    return running, gauges.waiting, gauges.kv_usage, prompt, generation, success


# dialect -> (running gauge, waiting gauge, [kv-usage gauges], prompt counter, generation counter, success counter)
NAMES = {name: _names(name) for name in _OWN_NAMES}
HELP = {
    "running": "Number of requests being generated right now.",
    "waiting": "Number of requests waiting for a run slot (real queue plus the profile's queue_waiting).",
    "kv": "KV-cache usage, 0 to 1 (running / max_running unless the profile sets kv_cache_usage).",
    "prompt": "Prompt tokens processed.",
    "generation": "Tokens generated.",
    "success": "Requests finished, by finish reason.",
}


@dataclass(frozen=True)
class ModelLoad:
    model: str
    running: int
    waiting: int
    kv_usage: float
    load: Load


def model_loads(state: EmulatorState, dialect: str) -> list[ModelLoad]:
    """Models this backend reports: those it served, and configured ones not pinned to another dialect."""
    names = {model for (d, model) in state.loads if d == dialect}
    names |= {model for model, profile in state.profiles.items() if profile.dialect in (None, dialect)}
    loads = []
    for model in sorted(names):
        profile = state.profile(model)
        load = state.loads.get((dialect, model)) or Load()
        if profile.kv_cache_usage is not None:
            kv = profile.kv_cache_usage
        else:
            kv = min(1.0, load.running / profile.max_running) if profile.max_running else 0.0
        loads.append(ModelLoad(model, load.running, load.waiting + profile.queue_waiting, kv, load))
    return loads


def prometheus_text(state: EmulatorState, dialect: str) -> str:
    """The /metrics body of `dialect`."""
    running, waiting, kv_names, prompt, generation, success = NAMES[dialect]
    loads = model_loads(state, dialect)
    lines: list[str] = []
    if dialect == "llamacpp":  # one model per llama-server: unlabelled series, summed
        lines += _series(running, "gauge", HELP["running"], [("", sum(m.running for m in loads))])
        lines += _series(waiting, "gauge", HELP["waiting"], [("", sum(m.waiting for m in loads))])
        lines += _series(prompt, "counter", HELP["prompt"], [("", sum(m.load.prompt_tokens for m in loads))])
        lines += _series(generation, "counter", HELP["generation"],
                         [("", sum(m.load.generation_tokens for m in loads))])
        return "\n".join(lines) + "\n"
    extra = ',engine="0"' if dialect == "vllm" else ""

    def labelled(value_of) -> list[tuple[str, float]]:
        return [(f'{{model_name="{_escape(m.model)}"{extra}}}', value_of(m)) for m in loads]

    lines += _series(running, "gauge", HELP["running"], labelled(lambda m: m.running))
    lines += _series(waiting, "gauge", HELP["waiting"], labelled(lambda m: m.waiting))
    for name in kv_names:
        lines += _series(name, "gauge", HELP["kv"], labelled(lambda m: m.kv_usage))
    lines += _series(prompt, "counter", HELP["prompt"], labelled(lambda m: m.load.prompt_tokens))
    lines += _series(generation, "counter", HELP["generation"], labelled(lambda m: m.load.generation_tokens))
    finished: list[tuple[str, float]] = [
        (f'{{model_name="{_escape(m.model)}"{extra},finished_reason="{reason}"}}', count)
        for m in loads for reason, count in sorted(m.load.finished.items())]
    if dialect == "sglang":
        finished = labelled(lambda m: sum(m.load.finished.values()))
    lines += _series(success, "counter", HELP["success"], finished)
    return "\n".join(lines) + "\n"


def _series(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {float(value)}" for labels, value in samples]
    return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
