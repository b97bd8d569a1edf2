"""`tollway route --explain`: how a request would be routed, without sending it anywhere.

It runs the gateway's own pipeline (routing/planner.py) on a request JSON and a config, and prints the
candidates, which filter removed which deployment and why, each strategy score, and the resulting plan.
Nothing is sent: a model-based classifier is not asked (the heuristic's grade is shown) and live
statistics start empty, as in a freshly started gateway.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
from multidict import CIMultiDict
from rich.console import Console
from rich.table import Table

from tollway.accounting.tickets import Key
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.catalog.errors import CatalogError
from tollway.config import ConfigError, load_config
from tollway.core.errors import GatewayError
from tollway.core.request import ENDPOINT_REQUIRED, parse_request
from tollway.routing.planner import Decision, Planner
from tollway.routing.table import RouteTable


@click.command()
@click.option("--explain", is_flag=True, help="Explain the routing decision (the only mode; sends nothing).")
@click.argument("request_file", default="-", type=click.File("rb"))
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Gateway config. Default: as `tollway serve` finds it.")
@click.option("-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="A request header, e.g. -H 'x-tollway-residency: eu'. Repeatable.")
@click.option("--key-residency", metavar="LIST", help="Simulate a key restricted to these jurisdictions, e.g. eu,self-hosted.")
@click.option("--endpoint", type=click.Choice(sorted(ENDPOINT_REQUIRED)),
              help="Default: chat if the body has messages, completions for prompt, embeddings for input.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def route(explain: bool, request_file, config_path: Path | None, headers: tuple[str, ...], key_residency: str | None,
          endpoint: str | None, as_json: bool) -> None:
    """Show how REQUEST_FILE (a JSON request body; - or nothing for stdin) would be routed.

    \b
    Example:
      echo '{"model":"auto","messages":[{"role":"user","content":"hi"}]}' | tollway route --explain --config tollway.yaml
    """
    if not explain:
        raise click.UsageError("say --explain: `tollway route --explain request.json --config tollway.yaml`")
    raw = request_file.read()
    try:
        config, path = load_config(config_path)
        catalog = Catalog.from_config_section({"catalog": config.catalog, "cny_per_usd": config.cny_per_usd})
        table = RouteTable(config, catalog, resolve_secrets=False)
    except (ConfigError, CatalogError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        creq = parse_request(endpoint or _endpoint_of(raw), raw)
    except GatewayError as exc:
        raise click.ClickException(f"{getattr(request_file, 'name', 'request')}: {exc.message}") from None
    group = table.group_for(creq.model)
    if group is None:
        raise click.ClickException(f"model {creq.model!r} is not served by {path} (models: {', '.join(table.public_names())})")
    header_map = _headers(headers)
    key = Key(id="(simulated)", residency=frozenset(_split(key_residency))) if key_residency else None
    planner = Planner(DeploymentPricer(catalog))
    try:
        decision = planner.filter(group, creq, key, header_map)
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None
    if decision.error is None:
        planner.rank(decision, header_map)
        if group.classifier is not None and group.strategy.grades_complexity:
            decision.notes.append(f"the gateway would first ask {group.classifier.name} to grade the request "
                                  f"(timeout {group.options.complexity.timeout_ms:g} ms); --explain shows the heuristic's grade")
    if as_json:
        click.echo(orjson.dumps(explanation(decision), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(decision)
    if decision.error is not None:
        sys.exit(1)


def explanation(decision: Decision) -> dict:
    """The decision as data (what --json prints)."""
    removed = {r.deployment.name: r for r in decision.removed}
    features = decision.features
    return {
        "model": decision.model, "route_group": decision.group.name, "strategy": decision.group.strategy.name,
        "ranking": decision.group.strategy.describe(decision.group),
        "request": {"endpoint": features.endpoint, "prompt_tokens_estimate": features.prompt_tokens,
                    "max_tokens": features.max_tokens, "needs": sorted(features.needs), "topics": sorted(features.topics)},
        "residency": None if decision.policy.allowed is None else sorted(decision.policy.allowed),
        "residency_sources": list(decision.policy.sources),
        "complexity": None if decision.complexity is None else {
            "level": decision.complexity.level, "score": decision.complexity.score,
            "signals": list(decision.complexity.signals), "source": decision.complexity.source},
        "candidates": [{"deployment": d.name, "provider": d.provider, "jurisdiction": d.jurisdiction,
                        "context_window": d.context_window,
                        "capabilities": sorted(d.capabilities) if d.capabilities_known else None,
                        "removed_by": removed[d.name].filter if d.name in removed else None,
                        "reason": removed[d.name].reason if d.name in removed else decision.spilled.get(d.name),
                        "score": decision.scores.get(d.name)} for d in decision.group.deployments],
        "plan": [d.name for d in decision.ordered],
        "route_header": decision.reason,
        "shadow": decision.shadow.name if decision.shadow else None,
        "notes": decision.notes,
        "error": None if decision.error is None else {"status": decision.error.status, "code": decision.error.code,
                                                       "message": decision.error.message},
    }


def _print(decision: Decision) -> None:
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)  # pipes get whole lines
    data = explanation(decision)
    request = data["request"]
    console.print(f"[bold]{decision.model}[/] -> route group [bold]{decision.group.name}[/] "
                  f"(strategy {decision.group.strategy.name})")
    console.print(f"ranking: {data['ranking']}")
    console.print(f"request: {request['endpoint']}, ~{request['prompt_tokens_estimate']} prompt tokens"
                  f"{', max_tokens ' + str(request['max_tokens']) if request['max_tokens'] else ''}, "
                  f"needs {decision.features.describe_needs()}"
                  f"{', about ' + ', '.join(request['topics']) if request['topics'] else ''}")
    console.print(f"residency: {decision.policy.describe()}")
    if decision.complexity is not None:
        console.print(f"complexity: {decision.complexity.describe()} score {decision.complexity.score:g}")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("deployment", "provider", "jurisdiction", "window", "capabilities", "verdict", "score"):
        table.add_column(column)
    for row in data["candidates"]:
        verdict = (f"[red]removed by {row['removed_by']}[/]: {row['reason']}" if row["removed_by"]
                   else f"[yellow]saturated[/]: {row['reason']}" if row["reason"] else "[green]candidate[/]")
        caps = ", ".join(row["capabilities"]) if row["capabilities"] is not None else "unknown"
        table.add_row(row["deployment"], row["provider"], row["jurisdiction"], str(row["context_window"]), caps,
                      verdict, row["score"] or "")
    console.print(table)
    for note in decision.notes:
        console.print(f"note: {note}")
    if decision.error is not None:
        console.print(f"[red]result: {decision.error.status} {decision.error.code}[/]: {decision.error.message}")
        return
    console.print("plan: " + "  ".join(f"{i + 1}. {name}" for i, name in enumerate(data["plan"])))
    console.print(f"x-tollway-route: {decision.reason}")
    if decision.shadow is not None:
        console.print(f"shadow copy to: {decision.shadow.name} (sampled)")


def _endpoint_of(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "chat"  # parse_request then names the JSON error
    for endpoint, field in ENDPOINT_REQUIRED.items():
        if isinstance(body, dict) and field in body:
            return endpoint
    return "chat"


def _headers(values: tuple[str, ...]) -> CIMultiDict:
    headers: CIMultiDict = CIMultiDict()
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not 'Name: value'", param_hint="--header")
        headers[name.strip()] = content.strip()
    return headers


def _split(value: str) -> list[str]:
    items = [item.strip().lower() for item in value.split(",")]
    if any(not item for item in items):
        raise click.BadParameter(f"{value!r}: list jurisdictions separated by commas, e.g. eu,self-hosted",
                                 param_hint="--key-residency")
    return items
