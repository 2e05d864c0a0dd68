"""Ship an exported model: a tarball for the chart's https source, or an upload to GCS."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

from tooling import paths
from tooling.errors import UserError


def version_dirs(model_dir: Path) -> list[Path]:
    """Numeric version directories with a saved_model.pb; errors say what is expected."""
    found = (
        sorted(
            (
                child
                for child in model_dir.iterdir()
                if child.name.isdigit() and (child / "saved_model.pb").is_file()
            ),
            key=lambda path: int(path.name),
        )
        if model_dir.is_dir()
        else []
    )
    if not found:
        raise UserError(
            f"{model_dir} holds no <version>/saved_model.pb; point at the model directory "
            "(DIR/image_classifier), or export one: `resnet-serving model export --out DIR`"
        )
    return found


def package(model_dir: Path, out: Path) -> Path:
    """Writes a .tar.gz of the version directories (what the chart's fetch-model expects)."""
    if not out.name.endswith((".tar.gz", ".tgz")):
        raise UserError(f"{out}: name the tarball *.tar.gz or *.tgz")
    versions = version_dirs(model_dir)
    paths.check_writable_folder("--out", out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        for version in versions:
            tar.add(version, arcname=version.name)
    return out


def upload(
    model_dir: Path, uri: str, progress: Callable[[str], None] = print, client: object = None
) -> list[str]:
    """Copies the version directories to gs://BUCKET/PATH/<version>/…; returns the object names."""
    bucket_name, _, prefix = uri.removeprefix("gs://").partition("/")
    if not uri.startswith("gs://") or not bucket_name:
        raise UserError(f"{uri}: give a gs://BUCKET/PATH destination")
    versions = version_dirs(model_dir)
    bucket = (client if client is not None else storage_client()).bucket(bucket_name)
    names = []
    for version in versions:
        for path in sorted(p for p in version.rglob("*") if p.is_file()):
            name = "/".join(
                part
                for part in (prefix.strip("/"), version.name, str(path.relative_to(version)))
                if part
            )
            progress(f"uploading {path.relative_to(model_dir)} → gs://{bucket_name}/{name}")
            bucket.blob(name).upload_from_filename(str(path))
            names.append(name)
    return names


def storage_client() -> object:
    """A Cloud Storage client with Application Default Credentials."""
    import google.auth.exceptions
    from google.cloud import storage

    try:
        return storage.Client()
    except google.auth.exceptions.DefaultCredentialsError as error:
        raise UserError(
            "no Google credentials found: run `gcloud auth application-default login` (or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a key file) and try again"
        ) from error
