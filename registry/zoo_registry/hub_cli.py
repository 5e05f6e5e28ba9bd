"""``zoo push`` and ``zoo pull``: registry entries to and from the Hugging Face Hub (``zoo_registry.hub``)."""

from __future__ import annotations

import click

from zoo_core.plugin_api import echo_json
from zoo_registry.hub_files import DEFAULT_MAX_SHARD

TIMEOUT_HELP = ("Seconds each call to the Hub may wait for an answer (default: $ZOO_HUB_TIMEOUT, else 30); "
                "a transfer of weights fails only when no byte moves for this long.")


@click.command("push")
@click.argument("ref", metavar="MODEL[.TAG]")
@click.option("--repo", "repo_id", required=True, metavar="OWNER/NAME", help="The Hub repository (created if new).")
@click.option("--private", is_flag=True, help="Create the repository private.")
@click.option("--revision", metavar="BRANCH", help="Commit to this branch (created from main if new).")
@click.option("--message", metavar="TEXT", help="The commit message.")
@click.option("--license", "license_id", metavar="ID", help="Licence for the card, e.g. apache-2.0 (none if unset).")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of committing to the branch.")
@click.option("--max-shard-size", default=DEFAULT_MAX_SHARD, show_default=True, metavar="SIZE",
              help="Split the weights into safetensors shards with an index above this size.")  # fmt: skip
@click.option("--timeout", type=float, metavar="SECONDS", help=TIMEOUT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def push_cmd(ref: str, repo_id: str, private: bool, revision: str | None, message: str | None,
             license_id: str | None, create_pr: bool, max_shard_size: str, timeout: float | None,
             as_json: bool) -> None:  # fmt: skip
    """Push a registry entry to the Hub: weights (safetensors), config.json and model card, in one commit."""
    from zoo_core import parse
    from zoo_registry.hub import push
    from zoo_registry.store import model_ref

    result = push(ref, repo_id, private=private, revision=revision, message=message, license=license_id,
                  create_pr=create_pr, max_shard_size=max_shard_size, timeout=timeout)  # fmt: skip
    if as_json:
        echo_json(result.to_dict())
        return
    pushed = parse(result.ref)
    click.echo(f"pushed {model_ref(pushed.model)}.{pushed.tag} to {result.repo_id}@{result.commit[:12]} "
               f"({result.revision}): {', '.join(result.files)}, config.json, README.md")  # fmt: skip
    click.echo(f"  {result.pr_url or result.url}")


@click.command("pull")
@click.argument("spec", metavar="OWNER/NAME[@REV]")
@click.option("--timeout", type=float, metavar="SECONDS", help=TIMEOUT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def pull_cmd(spec: str, timeout: float | None, as_json: bool) -> None:
    """Pull a repository zoo pushed into the local registry, as the pretrained tag hub-OWNER-NAME[-REV]."""
    from zoo_registry.hub import pull
    from zoo_registry.store import model_ref

    result = pull(spec, timeout=timeout)
    if as_json:
        echo_json(result.to_dict())
        return
    name = f"{model_ref(result.entry.model_name)}.{result.entry.tag}"
    if result.updated:
        click.echo(f"pulled {result.repo_id}@{result.commit[:12]} as {name} (sha256 {result.entry.sha256[:16]}...)")
    else:
        click.echo(f"{name} is up to date with {result.repo_id}@{result.commit[:12]}")
