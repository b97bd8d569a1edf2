"""LiteLLM's router_settings, litellm_settings and general_settings, as tollway route group strategies,
fallbacks, retries, timeouts, breaker and server settings. Whatever has no equivalent is reported."""

from __future__ import annotations

from tollway.migrate.litellm_models import ENV_PREFIX, Translation

# LiteLLM routing_strategy -> tollway strategy, and what the user should know about the difference.
STRATEGIES: dict[str, tuple[str, str]] = {
    "simple-shuffle": ("weighted", "weights are LiteLLM's `weight`, else rpm, else tpm, else equal"),
    "least-busy": ("fastest", "tollway ranks by observed time to first token, not by requests in flight"),
    "latency-based-routing": ("fastest", ""),
    "cost-based-routing": ("cheapest", ""),
    "usage-based-routing": ("priority", "tollway paces each deployment under its rpm/tpm (limits.deployments) and "
                                        "moves to the next one with room, in the group's order"),
    "usage-based-routing-v2": ("priority", "tollway paces each deployment under its rpm/tpm (limits.deployments) "
                                           "and moves to the next one with room, in the group's order"),
}
_ROUTER_MAPPED = {"routing_strategy", "fallbacks", "num_retries", "timeout", "model_group_alias", "allowed_fails",
                  "cooldown_time", "redis_host", "redis_port", "redis_password", "enable_pre_call_checks"}
_WHY = {
    "context_window_fallbacks": "tollway drops deployments whose context window the request cannot fit, so put "
                                "the larger-window deployments in the same route group",
    "content_policy_fallbacks": "a provider's refusal is an answer in tollway, not a failure to fail over",
    "retry_after": "tollway backs off by retry.backoff_base_s / backoff_max_s and honours Retry-After",
    "routing_strategy_args": "tollway's strategies have their own options (docs/routing.md)",
    "success_callback": "tollway records every request in its ledger and exports metrics, logs and traces "
                        "(docs/observability.md)",
    "failure_callback": "tollway records every request in its ledger and exports metrics, logs and traces",
    "callbacks": "tollway records every request in its ledger and exports metrics, logs and traces",
    "cache": "tollway does not cache answers",
    "cache_params": "tollway does not cache answers",
    "drop_params": "tollway passes request fields through untouched",
    "set_verbose": "use `tollway serve --log-level debug`",
    "json_logs": "set observe.logs.format: json",
    "database_url": "tollway keeps its own ledger and keys (database_url: a PostgreSQL database for tollway)",
    "alerting": "tollway's alerts go to observe.webhook (docs/observability.md)",
    "store_model_in_db": "tollway's deployments live in its config file",
}


def translate_router(settings: object, out: Translation, config: dict) -> None:
    """Strategies and weights on every group, fallbacks, aliases, retries, timeouts, breaker, Redis."""
    settings = settings if isinstance(settings, dict) else {}
    _fallbacks(settings.get("fallbacks"), "router_settings.fallbacks", out)
    _strategies(settings.get("routing_strategy", "simple-shuffle"), out)  # after fallbacks: they weigh 0
    _aliases(settings.get("model_group_alias"), out)
    if isinstance(settings.get("num_retries"), int) and settings["num_retries"] >= 0:
        longest = max((len(g["deployments"]) for g in out.route_groups.values()), default=1)
        config["retry"] = {"max_attempts": settings["num_retries"] + longest}
        out.note("router_settings.num_retries", f"retry.max_attempts: {config['retry']['max_attempts']}: tollway "
                                                "counts attempts across a group's deployments, failover included: "
                                                "the retries plus one try of each other deployment")
    if _positive(settings.get("timeout")):
        _timeout(float(settings["timeout"]), out, config)
    breaker = {}
    if isinstance(settings.get("allowed_fails"), int) and settings["allowed_fails"] > 0:
        breaker["consecutive_failures"] = settings["allowed_fails"]
        out.note("router_settings.allowed_fails", "breaker.consecutive_failures: tollway counts failures in a row "
                                                  "(and an error rate), not failures per minute")
    if _positive(settings.get("cooldown_time")):
        breaker["open_s"] = float(settings["cooldown_time"])
    if breaker:
        config["breaker"] = breaker
    _redis(settings, out, config)
    if settings.get("enable_pre_call_checks"):
        out.note("router_settings.enable_pre_call_checks", "always on: tollway plans only deployments whose context "
                                                           "window fits the request")
    for key in sorted(set(settings) - _ROUTER_MAPPED):
        out.note(f"router_settings.{key}", f"no equivalent: {_WHY.get(key, 'tollway has no such setting')}")


def translate_litellm_settings(settings: object, out: Translation) -> None:
    settings = settings if isinstance(settings, dict) else {}
    _fallbacks(settings.get("fallbacks"), "litellm_settings.fallbacks", out)
    for key in sorted(set(settings) - {"fallbacks"}):
        out.note(f"litellm_settings.{key}", f"no equivalent: {_WHY.get(key, 'tollway has no such setting')}")


def translate_general_settings(settings: object, out: Translation, config: dict) -> None:
    settings = settings if isinstance(settings, dict) else {}
    server: dict = {}
    for key in ("host", "port"):
        if key in settings:
            server[key] = settings[key]
    master = settings.get("master_key")
    if isinstance(master, str) and master:
        variable = master[len(ENV_PREFIX):] if master.startswith(ENV_PREFIX) else "TOLLWAY_MASTER_KEY"
        server["api_keys_env"] = [variable]
        server["admin_key_env"] = variable
        text = ("clients and the admin API accept the key in $" + variable)
        if not master.startswith(ENV_PREFIX):
            text += ": the key was written in the file and is not copied; export it"
        out.note("general_settings.master_key", text + "; virtual keys: `tollway keys create` (docs/budgets.md)")
    if server:
        config["server"] = {**config.get("server", {}), **server}
    for key in sorted(set(settings) - {"host", "port", "master_key"}):
        out.note(f"general_settings.{key}", f"no equivalent: {_WHY.get(key, 'tollway has no such setting')}")


def _strategies(name: object, out: Translation) -> None:
    strategy, why = STRATEGIES.get(str(name), ("priority", f"routing_strategy {name!r} is not known: groups keep "
                                                          "their order (strategy: priority)"))
    for group_name, group in out.route_groups.items():
        if len(group["deployments"]) < 2:
            continue
        group["strategy"] = strategy
        if strategy == "weighted":
            group["weights"] = {d: out.weights.get(group_name, {}).get(d, 1.0) for d in group["deployments"]}
    if why:
        out.note("router_settings.routing_strategy", f"{name} -> strategy: {strategy}: {why}")


def _fallbacks(rules: object, where: str, out: Translation) -> None:
    """`[{group: [fallback groups]}]`: the fallback groups' deployments follow the group's own, in order."""
    if rules is None:
        return
    if not isinstance(rules, list):
        out.note(where, "not a list of {group: [fallback groups]}: not used")
        return
    for rule in rules:
        for group, fallbacks in (rule.items() if isinstance(rule, dict) else ()):
            if group not in out.route_groups:
                out.note(where, f"{group}: no such model group here: not used")
                continue
            members = out.route_groups[group]["deployments"]
            own = len(members)
            for fallback in fallbacks if isinstance(fallbacks, list) else [fallbacks]:
                if fallback not in out.route_groups:
                    out.note(where, f"{group} -> {fallback}: no such model group here: not used")
                    continue
                members.extend(d for d in out.route_groups[fallback]["deployments"] if d not in members)
            for added in members[own:]:
                out.weights.setdefault(group, {})[added] = 0.0  # weighted: never first, still a failover
            out.note(where, f"{group}: its route group fails over to {', '.join(members[own:])} after its own "
                            f"deployments (with strategy cheapest or fastest they rank like the others)")


def _aliases(aliases: object, out: Translation) -> None:
    for alias, target in (aliases.items() if isinstance(aliases, dict) else ()):
        group = target.get("model") if isinstance(target, dict) else target
        if group in out.route_groups and alias not in out.route_groups:
            out.route_groups[group].setdefault("aliases", []).append(alias)
        else:
            out.note(f"router_settings.model_group_alias.{alias}", f"{group!r} is not a model group here: not used")


def _timeout(seconds: float, out: Translation, config: dict) -> None:
    for provider in out.providers.values():
        provider.setdefault("timeouts", {}).setdefault("response_s", seconds)
    if seconds > 300:
        config["server"] = {**config.get("server", {}), "request_deadline_s": seconds}
    out.note("router_settings.timeout", f"each provider's timeouts.response_s: {seconds:g} (a whole answer); "
                                        "streams also have first_byte_s and between_chunks_s")


def _redis(settings: dict, out: Translation, config: dict) -> None:
    host = settings.get("redis_host")
    if not host:
        return
    password = settings.get("redis_password")
    if password:
        out.note("router_settings.redis_host", "Redis with a password: set redis_url: redis://:PASSWORD@"
                                               f"{host}:{settings.get('redis_port', 6379)}/0 yourself (tollway takes "
                                               "a URL and does not read it from the environment)")
        return
    config["redis_url"] = f"redis://{host}:{settings.get('redis_port', 6379)}/0"
    out.note("router_settings.redis_host", "redis_url: tollway shares rate limits, budgets and revocations there")


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
