"""`tollway migrate litellm config.yaml [-o tollway.yaml]`: start from a LiteLLM proxy config.

The new config goes to stdout (or -o); each setting that had no equivalent goes to stderr, one per line,
with the reason, so the two can be read apart.
"""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from tollway.migrate.litellm import MigrationError, translate


@click.group()
def migrate() -> None:
    """Translate another gateway's config into a tollway.yaml."""


@migrate.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the tollway config here (default: print it).")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
def litellm(source: Path, output: Path | None, force: bool) -> None:
    """Translate a LiteLLM proxy config.yaml: model_list into providers, deployments and route groups,
    router_settings into strategies, fallbacks, retries and timeouts. What has no equivalent is listed on
    stderr, one setting a line. See docs/migrate.md."""
    try:
        raw = yaml.safe_load(source.read_text())
    except OSError as exc:
        raise click.ClickException(f"{source}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{source}: not valid YAML: {exc}") from None
    try:
        migrated = translate(raw)
    except MigrationError as exc:
        raise click.ClickException(f"{source}: {exc}") from None
    text = f"# tollway config translated from {source.name} by `tollway migrate litellm`; review before use.\n" \
        + yaml.safe_dump(migrated.config, sort_keys=False, allow_unicode=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        if output.exists() and not force:
            raise click.ClickException(f"{output} exists; pass --force to overwrite it")
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)
    if migrated.notes:
        click.echo(f"{len(migrated.notes)} settings had no exact equivalent:", err=True)
        for note in migrated.notes:
            click.echo(f"  {note}", err=True)
