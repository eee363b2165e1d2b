"""The small part of kustomize that deploy/k8s uses, in Python, so the manifests can be tested without binaries.

Supported: ``resources`` (files and directories), ``namespace``, ``images`` and ``patches`` given by ``path``
(strategic merge, several documents per file allowed). Anything else in a kustomization.yaml is refused
rather than ignored, so a new feature cannot slip past the tests; when ``kubectl`` is installed the tests
also check that this build equals ``kubectl kustomize``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume"}
# patchMergeKey of the lists the patches touch; other lists are replaced, as strategic merge does for them.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name", "volumeMounts": "name"}


def build(directory: Path) -> list[Manifest]:
    """Builds the kustomization in a directory into its list of manifests."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise NotImplementedError(f"{directory}: kustomization fields this builder does not implement: {unknown}")
    manifests: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        manifests.extend(build(path) if path.is_dir() else load(path))
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise NotImplementedError(f"{directory}: only `patches: - path: ...` is implemented, not {patch}")
        for document in load(directory / patch["path"]):
            apply_patch(manifests, document)
    if "namespace" in kustomization:
        set_namespace(manifests, kustomization["namespace"])
    for image in kustomization.get("images", []):
        set_image(manifests, image)
    return manifests


def load(path: Path) -> list[Manifest]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def identity(manifest: Manifest) -> tuple[str, str, str]:
    group = manifest["apiVersion"].rpartition("/")[0]
    return group, manifest["kind"], manifest["metadata"]["name"]


def apply_patch(manifests: list[Manifest], patch: Manifest) -> None:
    matches = [index for index, manifest in enumerate(manifests) if identity(manifest) == identity(patch)]
    if len(matches) != 1:
        raise LookupError(f"patch {identity(patch)} matches {len(matches)} resources")
    manifests[matches[0]] = strategic_merge(manifests[matches[0]], patch)


def strategic_merge(base: Any, patch: Any, field: str | None = None) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = strategic_merge(merged[key], value, key) if key in merged else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        merged_list = list(base)
        for item in patch:
            found = next((i for i, existing in enumerate(merged_list) if existing.get(key) == item.get(key)), None)
            if found is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[found] = strategic_merge(merged_list[found], item)
        return merged_list
    return copy.deepcopy(patch)


def set_namespace(manifests: list[Manifest], namespace: str) -> None:
    for manifest in manifests:
        if manifest["kind"] == "Namespace":
            manifest["metadata"]["name"] = namespace
        elif manifest["kind"] not in CLUSTER_SCOPED:
            manifest["metadata"]["namespace"] = namespace


def set_image(manifests: list[Manifest], image: dict[str, str]) -> None:
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise NotImplementedError(f"images fields this builder does not implement: {unknown}")
    for container in containers(manifests):
        name, tag = split_image(container["image"])
        if name != image["name"]:
            continue
        name = image.get("newName", name)
        if "digest" in image:
            container["image"] = f"{name}@{image['digest']}"
        else:
            tag = image.get("newTag", tag)
            container["image"] = f"{name}:{tag}" if tag else name


def split_image(image: str) -> tuple[str, str | None]:
    """Splits ``registry:5000/name:tag`` into its name and tag (a port is not a tag)."""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, None
    return name, tag


def containers(node: Any) -> list[dict[str, Any]]:
    """Every container and init container anywhere under a node."""
    found: list[dict[str, Any]] = []
    if isinstance(node, list):
        for item in node:
            found.extend(containers(item))
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found.extend(item for item in value if isinstance(item, dict) and "image" in item)
            else:
                found.extend(containers(value))
    return found
