"""Render every kustomize overlay and validate each object offline, strictly.

Built-in kinds against the Kubernetes schemas of `--kubernetes` (kubernetes-validate);
ServiceMonitor and PrometheusRule against the CRDs kept in k8s/crds/, with unknown fields
refused as the API server's strict field validation would. The rendered manifests are
written to `--out` for checkov. Run by `make deploy-check` in .venv-deploy.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
Schema = dict[str, Any]


def render(overlay: Path, kubectl: str) -> str:
    """The overlay as `kubectl kustomize` builds it (a build error fails the check)."""
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{overlay}: kustomize failed:\n{result.stderr}")
    return result.stdout


def crd_schemas(directory: Path) -> dict[tuple[str, str], Schema]:
    """(apiVersion, kind) -> the strict JSON schema of that custom resource version."""
    schemas: dict[tuple[str, str], Schema] = {}
    for path in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def strict(schema: Schema) -> Schema:
    """Refuse unknown fields: every object schema that lists its properties gets
    additionalProperties false, unless it keeps unknown fields on purpose."""
    out = dict(schema)
    pattern = out.get("pattern")
    if isinstance(pattern, str) and "(?i)" in pattern:
        # Go's regexp takes inline flags anywhere, Python's only at the start
        out["pattern"] = "(?i)" + pattern.replace("(?i)", "")
    if "properties" in out:
        out["properties"] = {k: strict(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = strict(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = strict(out["additionalProperties"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [strict(s) for s in out[key]]
    return out


def documents(text: str) -> Iterator[Mapping[str, Any]]:
    for doc in yaml.safe_load_all(text):
        if doc:
            yield doc


def validate(doc: Mapping[str, Any], version: str, crds: Mapping[tuple[str, str], Schema]) -> None:
    """Raise with the object's kind/name and the failing path."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    name = f"{key[1]}/{doc.get('metadata', {}).get('name')}"
    if key in crds:
        meta = doc.get("metadata", {})
        if not meta.get("name") or not meta.get("namespace"):
            raise ValueError(f"{name}: a custom resource needs metadata.name and namespace")
        try:
            jsonschema.Draft7Validator(crds[key]).validate(dict(doc))
        except jsonschema.ValidationError as exc:
            path = "/".join(str(p) for p in exc.absolute_path)
            raise ValueError(f"{name}: {path}: {exc.message}") from exc
        return
    try:
        kubernetes_validate.validate(dict(doc), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.path)
        raise ValueError(f"{name}: {path}: {exc.message}") from exc
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise ValueError(f"{name}: no schema for {key[0]} {key[1]} in {version}") from exc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("overlays", nargs="+", type=Path)
    parser.add_argument("--kubernetes", default="1.33")
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--crds", type=Path, default=ROOT / "k8s" / "crds")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    crds = crd_schemas(args.crds)
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for overlay in args.overlays:
        text = render(overlay, args.kubectl)
        (args.out / f"{overlay.name}.yaml").write_text(text, encoding="utf-8")
        count = 0
        for doc in documents(text):
            count += 1
            try:
                validate(doc, args.kubernetes, crds)
            except ValueError as exc:
                failures += 1
                sys.stderr.write(f"{overlay}: {exc}\n")
        sys.stdout.write(f"{overlay}: {count} objects valid against Kubernetes {args.kubernetes}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
