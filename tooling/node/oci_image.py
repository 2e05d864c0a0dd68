"""Packs a root filesystem into an OCI image archive that `ctr images import` takes.

The local images (hack/images/) have no registry and no Docker to build them: their root
filesystem is a tar (mmdebstrap's) or a folder, and this writes the OCI layout around it (one
gzip layer, the image config with its entrypoint and user, the manifest, and an index whose
`io.containerd.image.name` annotation names the image). The same inputs give the same bytes:
entries sorted, times and owners' names cleared in layers made from a folder, gzip without a
timestamp.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageConfig:
    """What the image runs, as a Dockerfile's ENTRYPOINT, CMD, USER, ENV and WORKDIR say."""

    entrypoint: Sequence[str]
    cmd: Sequence[str] = ()
    user: str = ""
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    workdir: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def qualified(name: str) -> str:
    """The name containerd and the kubelet look an image up by (docker.io/…, :latest added)."""
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"
    if ":" not in name.rsplit("/", 1)[-1] and "@" not in name:
        name += ":latest"
    return name


class _Digest:
    """A writable file that passes bytes on and keeps their sha256 and count."""

    def __init__(self, sink: io.RawIOBase | io.BufferedIOBase) -> None:
        self.sink, self.hash, self.size = sink, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.sink.write(data) or len(data)

    def flush(self) -> None:
        self.sink.flush()

    @property
    def digest(self) -> str:
        return f"sha256:{self.hash.hexdigest()}"


def _clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uname, info.gname = 0, "", ""
    return info


def _tar_folder(folder: Path, out: _Digest) -> None:
    """A layer of FOLDER's tree: sorted, owners kept by number, times cleared."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for top, dirs, files in os.walk(folder):
            dirs.sort()
            for entry in sorted(dirs + files):
                path = Path(top, entry)
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False, filter=_clean)


def _write_layer(rootfs: Path, blob: Path, level: int) -> tuple[str, str, int]:
    """Gzips ROOTFS (a folder or a tar) into BLOB; returns (diff id, digest, size)."""
    with blob.open("wb") as raw:
        compressed = _Digest(raw)
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=level, mtime=0) as gz:  # type: ignore[arg-type]
            plain = _Digest(gz)  # type: ignore[arg-type]
            if rootfs.is_dir():
                _tar_folder(rootfs, plain)
            else:
                with rootfs.open("rb") as source:
                    while chunk := source.read(_CHUNK):
                        plain.write(chunk)
    return plain.digest, compressed.digest, compressed.size


def _json_blob(blobs: Path, document: dict[str, object]) -> tuple[str, int]:
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    (blobs / digest.split(":")[1]).write_bytes(data)
    return digest, len(data)


def pack(rootfs: Path, out: Path, names: Sequence[str], config: ImageConfig, level: int = 1) -> str:
    """Writes OUT, the OCI archive of ROOTFS run as CONFIG named NAMES; returns its digest."""
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as work:
        layout = Path(work)
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        partial = blobs / "layer.partial"
        diff_id, layer_digest, layer_size = _write_layer(rootfs, partial, level)
        partial.rename(blobs / layer_digest.split(":")[1])
        image_config: dict[str, object] = {
            "Entrypoint": list(config.entrypoint),
            "Env": list(config.env),
        }
        if config.cmd:
            image_config["Cmd"] = list(config.cmd)
        if config.user:
            image_config["User"] = config.user
        if config.workdir:
            image_config["WorkingDir"] = config.workdir
        if config.labels:
            image_config["Labels"] = dict(config.labels)
        config_digest, config_size = _json_blob(
            blobs,
            {
                "architecture": "amd64",
                "os": "linux",
                "config": image_config,
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [
                    {"created_by": "resnet-serving hack/images", "created": "1970-01-01T00:00:00Z"}
                ],
                "created": "1970-01-01T00:00:00Z",
            },
        )
        manifest_digest, manifest_size = _json_blob(
            blobs,
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config_size},
                "layers": [{"mediaType": LAYER_TYPE, "digest": layer_digest, "size": layer_size}],
            },
        )
        manifests = [
            {
                "mediaType": MANIFEST_TYPE,
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": qualified(name),
                    "org.opencontainers.image.ref.name": qualified(name).rsplit(":", 1)[1],
                },
            }
            for name in names
        ]
        index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests}
        (layout / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
        (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        archive = layout / "image.tar"
        with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
            for path in [layout / "oci-layout", layout / "index.json", *sorted(blobs.iterdir())]:
                tar.add(path, arcname=str(path.relative_to(layout)), filter=_clean)
        shutil.move(archive, out)
    return manifest_digest


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tooling.node.oci_image ROOTFS OUT --name N --entrypoint JSON …`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rootfs", type=Path, help="a folder or a tar of the root filesystem")
    parser.add_argument("out", type=Path, help="the OCI archive to write")
    parser.add_argument("--name", action="append", required=True, help="image name (repeatable)")
    parser.add_argument(
        "--entrypoint", required=True, help="JSON list, as a Dockerfile's ENTRYPOINT"
    )
    parser.add_argument("--cmd", default="[]", help="JSON list, as CMD")
    parser.add_argument("--user", default="")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE (repeatable; PATH is set)"
    )
    parser.add_argument("--workdir", default="")
    parser.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeatable)")
    args = parser.parse_args(argv)
    config = ImageConfig(
        entrypoint=json.loads(args.entrypoint),
        cmd=json.loads(args.cmd),
        user=args.user,
        env=[*ImageConfig.env, *args.env],
        workdir=args.workdir,
        labels=dict(label.split("=", 1) for label in args.label),
    )
    digest = pack(args.rootfs, args.out, args.name, config)
    print(f"{args.out}: {', '.join(qualified(n) for n in args.name)} {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
