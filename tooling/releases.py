"""Installs and removes the project's charts with pyhelm3 (real helm against the cluster)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from pyhelm3 import Client
from pyhelm3.errors import ConnectionError as HelmConnectionError
from pyhelm3.errors import Error as HelmError
from pyhelm3.errors import ReleaseNotFoundError

from tooling import paths
from tooling.errors import UserError, cluster_unreachable, one_line


def helm_client(kubeconfig: Path) -> Client:
    return Client(executable=str(paths.tool("helm")), kubeconfig=kubeconfig, default_timeout="5m")


def values_from_files(*files: Path) -> list[dict]:
    return [yaml.safe_load(file.read_text()) or {} for file in files]


def install(
    kubeconfig: Path, release: str, chart: str, namespace: str, *values: dict, wait: bool = False
) -> object:
    """`helm upgrade --install` of charts/<chart> with the values maps (later ones win)."""

    async def go() -> object:
        client = helm_client(kubeconfig)
        loaded = await client.get_chart(paths.CHARTS_DIR / chart)
        return await client.install_or_upgrade_release(
            release, loaded, *values, namespace=namespace, create_namespace=False, wait=wait
        )

    try:
        return asyncio.run(go())
    except HelmConnectionError as error:
        raise cluster_unreachable(kubeconfig, error) from error
    except HelmError as error:  # values the chart's schema refuses, objects the cluster refuses
        raise UserError(
            f"helm could not install {release} (charts/{chart}): {one_line(error)}"
        ) from error


def uninstall(kubeconfig: Path, release: str, namespace: str, wait: bool = False) -> bool:
    """`helm uninstall`; False when there was no such release."""
    try:
        asyncio.run(
            helm_client(kubeconfig).uninstall_release(release, namespace=namespace, wait=wait)
        )
    except ReleaseNotFoundError:
        return False
    return True
