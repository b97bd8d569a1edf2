"""The `tollway` command.

Each subcommand lives in the module that owns its idea; this file only names them. Subcommands are
imported on first use so `tollway --help` and `tollway serve` stay fast to start.
"""

from __future__ import annotations

import importlib

import click

from tollway import __version__

# name -> ("module:attribute of a click.Command", one-line help shown by `tollway --help`)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("tollway.gateway.command:serve", "Run the OpenAI-compatible gateway."),
    "reload": ("tollway.gateway.reload_command:reload", "Reload a running gateway's config without a restart."),
    "emulate": ("tollway.emulator.command:emulate", "Run a sandbox provider that speaks each provider's dialect and injects faults."),
    "catalog": ("tollway.catalog.command:catalog", "Show the price catalog: dated prices per provider and model."),
    "usage": ("tollway.accounting.usage_report:usage", "Spend and tokens from the ledger by day, model and provider."),
    "bench": ("tollway.bench.command:bench", "Load-test OpenAI-compatible endpoints side by side (TTFT, TPOT, ITL, goodput)."),
    "plan": ("tollway.plan.command:plan", "Price per-token API vs provisioned vs dedicated vs self-hosted for a workload."),
    "replay": ("tollway.plan.replay_command:replay", "Replay logged traffic under another catalog and routing policy."),
    "local-model": ("tollway.selfhost.command:local_model", "Build and run the bundled local model (llama.cpp + SmolLM2-135M)."),
    "keys": ("tollway.accounting.keys.command:keys", "Create, list, update and revoke virtual keys with budgets and limits."),
    "teams": ("tollway.accounting.teams_command:teams", "Create, list, change the budgets of, and delete teams."),
    "route": ("tollway.routing.explain_command:route", "Explain how a request would be routed, without sending it."),
    "audit": ("tollway.observe.audit_command:audit", "Residency proof from the ledger; `audit admin`: who changed what on the admin side."),
    "report": ("tollway.observe.report_command:report", "Spend, tokens, latency and errors per provider and model, with savings."),
    "reconcile": ("tollway.observe.reconcile_command:reconcile", "Compare the ledger with a provider's invoice export."),
    "migrate": ("tollway.migrate.command:migrate", "Translate a LiteLLM proxy config into a tollway.yaml."),
    "batch": ("tollway.batch.plan_command:batch", "Plan a batch file: its schedule in the cheap hours and what it saves."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        target, short_help = SUBCOMMANDS[name]
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
            command = getattr(module, attr)
        except (ImportError, AttributeError) as exc:
            return _unavailable(name, short_help, exc)
        command.short_help = short_help
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, short_help: str, exc: Exception) -> click.Command:
    @click.command(name=name, help=short_help, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def stub(args: tuple[str, ...]) -> None:
        raise click.ClickException(f"'tollway {name}' could not be loaded: {exc}")

    return stub


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tollway")
def main() -> None:
    """tollway: one OpenAI-compatible endpoint in front of every LLM provider, metering every token and dollar."""


if __name__ == "__main__":
    main()
