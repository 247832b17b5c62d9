"""An image pull secret, or a Flux source's `secretRef`, that nothing on the cluster defines.

A Pod whose `imagePullSecrets` names a Secret that its namespace does not have pulls
without credentials: from a private registry every Pod of the workload fails with
`ImagePullBackOff`. A Flux source (GitRepository, HelmRepository, OCIRepository, Bucket)
whose `spec.secretRef` names a missing Secret never becomes ready. The incident: every
chart referenced `ghcr-pull-secret` while the clusters had `ghcr-pull`.

Checked: literal `imagePullSecrets` names of Deployments, StatefulSets, DaemonSets,
ReplicaSets, Jobs, CronJobs, Pods and ServiceAccounts, of a HelmRelease's `spec.values`
(in the release's target namespace), and sources' `spec.secretRef`. A Secret counts as
defined in a namespace when something the same cluster applies there defines it: a
Secret (SOPS-encrypted or not), a SealedSecret, an ExternalSecret's target (or a
ClusterExternalSecret's, in any namespace), a cert-manager Certificate's `secretName`, a
`secretGenerator`, a Secret copied there by Reflector
(`reflector.v1.k8s.emberstack.com/reflection-auto-namespaces`) or kubernetes-replicator
(`replicator.v1.mittwald.de/replicate-to`), or an `external_objects` entry of the config.

Precision first, so the rule says nothing about a cluster whose inventory is not fully
known (a remote resource, a Helm chart generator, a Kustomization of another source), a
namespace where an unknown secret-making resource lives (an operator's CRD), a cluster
that keeps no secret of that kind in git at all (its secrets are made by hand), the
`flux-system` bootstrap secret, and, in a namespace where a HelmRelease installs (a
chart may create the secret), anything but a near miss. When a pull secret exists under
a similar name, the message says "did you mean".
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml

from bot.analysis import secrets as secrets_mod
from bot.analysis import yamlscan as ys
from bot.analysis.cache import of_object
from bot.analysis.findings import Finding, Severity
from bot.analysis.model import BOOTSTRAP_NAME, Chart, secure_join
from bot.analysis.options import ExternalObject
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.clusters import Applied, Cluster

ID = "missing-pull-secret"
SEVERITY = Severity.WARNING

_POD_SPEC = {
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
    ("", "Pod"): ("spec",),
    ("", "ServiceAccount"): (),
}
_SOURCES = {"GitRepository", "HelmRepository", "OCIRepository", "Bucket"}
_PULL_TYPES = {"kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"}
_PULL_NAME = re.compile(r"pull|regcred|registry|docker|ghcr|gcr|ecr|quay|harbor|image", re.I)
# Values keys of charts that create their own pull secret from credentials.
_CREDENTIALS = re.compile(
    r"^(imageCredentials|registryCredentials|dockerconfigjson|createPullSecret|"
    r"createImagePullSecret|password|registrySecret)$",
    re.I,
)
_REFLECTOR = "reflector.v1.k8s.emberstack.com/"
_REPLICATOR = "replicator.v1.mittwald.de/"
_ANY = "*"


@dataclass
class _Secrets:
    """What one cluster defines: namespace -> name -> is it a pull secret."""

    by_ns: dict[str, dict[str, bool]] = field(default_factory=dict)
    unknown_ns: set[str] = field(default_factory=set)  # something unknown makes secrets
    anywhere: dict[str, bool] = field(default_factory=dict)
    all_unknown: bool = False

    def add(self, namespace: str | None, name: str | None, pull: bool) -> None:
        if not name or "${" in name:
            if namespace:
                self.unknown_ns.add(namespace)
            return
        if namespace is None or namespace == _ANY:
            self.anywhere[name] = self.anywhere.get(name, False) or pull
            return
        names = self.by_ns.setdefault(namespace, {})
        names[name] = names.get(name, False) or pull

    def defined(self, namespace: str, name: str) -> bool:
        return name in self.by_ns.get(namespace, {}) or name in self.anywhere

    def pull_names(self, namespace: str | None) -> list[str]:
        if namespace is None:
            names = {n for ns in self.by_ns.values() for n, pull in ns.items() if pull}
        else:
            names = {n for n, pull in self.by_ns.get(namespace, {}).items() if pull}
        return sorted(names | {n for n, pull in self.anywhere.items() if pull})


def _annotations(node: ys.Node | None) -> dict[str, str]:
    return {k: ys.scalar(v) or "" for k, _, v in ys.pairs(ys.get(node, "annotations"))}


def _copies(secrets: _Secrets, meta: ys.Node | None, name: str | None, pull: bool) -> None:
    """Reflector and kubernetes-replicator copy a Secret into other namespaces."""
    notes = _annotations(meta)
    targets: list[str] = []
    if notes.get(_REFLECTOR + "reflection-auto-enabled", "").lower() == "true":
        listed = notes.get(_REFLECTOR + "reflection-auto-namespaces") or notes.get(
            _REFLECTOR + "reflection-allowed-namespaces", ""
        )
        targets += [t.strip() for t in listed.split(",")] if listed.strip() else [_ANY]
    if notes.get(_REPLICATOR + "replicate-to"):
        targets += [t.strip() for t in notes[_REPLICATOR + "replicate-to"].split(",")]
    if notes.get(_REPLICATOR + "replicate-to-matching"):
        targets.append(_ANY)
    for target in targets:
        if not target:
            continue
        # A pattern (`team-.*`, `app-*`) may match any namespace.
        secrets.add(_ANY if re.search(r"[^a-z0-9-]", target) else target, name, pull)


def _pull_like(name: str | None, secret_type: str | None) -> bool:
    return secret_type in _PULL_TYPES or bool(name and _PULL_NAME.search(name))


def _collect(repo: Snapshot, cluster: Cluster, external: tuple[ExternalObject, ...]) -> _Secrets:
    secrets = _Secrets()
    for obj in cluster.objects():
        i = obj.id
        ns = i.namespace
        if i.kind == "Secret" and i.group == "":
            # The type and the copying annotations are all that is read of a Secret.
            node = obj.node
            stype = ys.scalar(ys.get(node, "type"))
            secrets.add(ns, i.name, _pull_like(i.name, stype))
            _copies(secrets, ys.get(node, "metadata"), i.name, _pull_like(i.name, stype))
        elif i.kind == "SealedSecret" and i.group == "bitnami.com":
            node = obj.node
            template = ys.get(node, "spec", "template")
            name = ys.scalar(ys.get(template, "metadata", "name")) or i.name
            pull = _pull_like(name, ys.scalar(ys.get(template, "type")))
            secrets.add(ns, name, pull)
            _copies(secrets, ys.get(template, "metadata"), name, pull)
            _copies(secrets, ys.get(node, "metadata"), name, pull)
        elif (
            i.kind in ("ExternalSecret", "ClusterExternalSecret")
            and i.group == "external-secrets.io"
        ):
            node = obj.node
            spec = ys.get(node, "spec")
            if i.kind == "ClusterExternalSecret":
                spec = ys.get(spec, "externalSecretSpec")
            target = ys.get(spec, "target")
            name = (
                ys.scalar(ys.get(target, "name"))
                or (
                    ys.scalar(ys.get(node, "spec", "externalSecretName"))
                    if i.kind == "ClusterExternalSecret"
                    else None
                )
                or i.name
            )
            template = ys.get(target, "template")
            pull = _pull_like(name, ys.scalar(ys.get(template, "type")))
            secrets.add(_ANY if i.kind == "ClusterExternalSecret" else ns, name, pull)
            _copies(secrets, ys.get(template, "metadata"), name, pull)
        elif i.kind == "Certificate" and i.group == "cert-manager.io":
            secrets.add(ns, ys.scalar(ys.get(obj.node, "spec", "secretName")), False)
        elif "secret" in i.kind.lower() or i.kind in ("OnePasswordItem",):
            # An operator's resource that makes Secrets in ways not modelled here.
            if ns is None:
                secrets.all_unknown = True
            else:
                secrets.unknown_ns.add(ns)
    for entry in external:
        # Kinds match whatever their case, as in ExternalObject.matches.
        if entry.kind.lower() == "secret" and entry.name:
            namespace = entry.namespace if entry.namespace not in (None, "*") else _ANY
            secrets.add(namespace, entry.name, True)
    return secrets


@dataclass(frozen=True)
class _Ref:
    namespace: str
    name: str
    path: str
    line: int
    what: str  # "`imagePullSecrets` of Deployment media/plex"
    pull: bool
    helm: bool  # from a HelmRelease's values: the chart may make it


def _literal(name: str | None) -> bool:
    return bool(name) and "${" not in (name or "") and "{{" not in (name or "")


def _pull_refs(
    node: ys.Node | None, ns: str | None, path: str, what: str, helm: bool
) -> Iterator[_Ref]:
    """The pull secrets a list names; each where it is written (`path` is the file of the
    object: a name a patch set is in the patch's file)."""
    if ns is None:
        return
    for item in ys.items(node):
        name_node = ys.get(item, "name") if isinstance(item, yaml.MappingNode) else item
        name = ys.scalar(name_node)
        if name_node is not None and name and _literal(name):
            file, line, _ = yn.origin_of(name_node, path)
            yield _Ref(ns, name, file, line, what, True, helm)


def _values_pull_secrets(values: ys.Node | None) -> tuple[list[ys.Node], bool]:
    """`imagePullSecrets` lists anywhere in HelmRelease values, and whether the values
    carry registry credentials (the chart then makes the secret itself)."""
    found: list[ys.Node] = []
    credentials = False
    stack = [values] if values is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, _, value in ys.pairs(node):
                if key == "imagePullSecrets":
                    found.append(value)
                elif _CREDENTIALS.match(key):
                    credentials = True
                stack.append(value)
    return found, credentials


def _shared_values_pull_secrets(
    repo: Snapshot, values: ys.Node | None
) -> tuple[list[ys.Node], bool]:
    """`_values_pull_secrets`, once per values node: a HelmRelease that nothing changed
    is the same node on both sides of a change and in a kept analysis (its build is
    shared), and its values are the largest tree a review walks for this rule."""
    if values is None:
        return [], False
    return of_object(repo.shared, "values-pull-secrets", values, _values_pull_secrets)


def _holds(repo: Snapshot, path: str, needle: bytes) -> bool:
    """A cheap look at the bytes before composing a document: most files hold no
    reference at all."""
    return needle in (repo.data(path) or b"")


def _references(repo: Snapshot, cluster: Cluster) -> Iterator[_Ref]:
    charts: dict[str, tuple[list[str], bool]] = {}
    for obj in cluster.objects():
        i = obj.id
        if i.templated:
            continue
        spec_path = _POD_SPEC.get((i.group, i.kind))
        if spec_path is not None:
            node = obj.node
            pod = ys.get(node, *spec_path) if spec_path else node
            yield from _pull_refs(
                ys.get(pod, "imagePullSecrets"),
                i.namespace,
                obj.path,
                f"`imagePullSecrets` of {i}",
                False,
            )
        elif i.group == "source.toolkit.fluxcd.io" and i.kind in _SOURCES:
            if i.name == BOOTSTRAP_NAME or i.namespace is None:
                continue
            node = obj.node
            name_node = ys.get(node, "spec", "secretRef", "name")
            name = ys.scalar(name_node)
            if name_node is None or not _literal(name) or name == BOOTSTRAP_NAME:
                continue
            assert name is not None
            file, line, _ = yn.origin_of(name_node, obj.path)
            yield _Ref(
                i.namespace,
                name,
                file,
                line,
                f"`spec.secretRef` of {i}",
                i.kind == "OCIRepository"
                or (
                    i.kind == "HelmRepository" and ys.scalar(ys.get(node, "spec", "type")) == "oci"
                ),
                False,
            )
        elif i.group == "helm.toolkit.fluxcd.io" and i.kind == "HelmRelease":
            yield from _release_refs(repo, obj, charts)


def _release_refs(
    repo: Snapshot, obj: Applied, charts: dict[str, tuple[list[str], bool]]
) -> Iterator[_Ref]:
    """Pull secrets a HelmRelease's pods get: from its `spec.values`, else from the
    `values.yaml` and the literal template lines of the in-repo chart it installs."""
    i = obj.id
    node = obj.node
    spec = ys.get(node, "spec")
    target = ys.scalar(ys.get(spec, "targetNamespace")) or i.namespace
    if not target or "${" in target:
        return
    release = f"HelmRelease {i.namespace}/{i.name}"
    lists, credentials = _shared_values_pull_secrets(repo, ys.get(spec, "values"))
    if credentials:
        return
    for node_list in lists:
        yield from _pull_refs(
            node_list, target, obj.path, f"`imagePullSecrets` in the values of {release}", True
        )
    chart = _in_repo_chart(repo, spec)
    if chart is None:
        return
    if chart.directory not in charts:
        templates = _templates(repo, chart)
        # A chart that makes Secrets itself may make this one.
        charts[chart.directory] = (
            templates,
            any(re.search(rb"^kind:\s*Secret\b", repo.data(p) or b"", re.M) for p in templates),
        )
    templates, makes_secrets = charts[chart.directory]
    if not lists:
        values = f"{chart.directory}/values.yaml" if chart.directory else "values.yaml"
        docs = repo.documents(values) if values in repo.path_set else []
        found, chart_credentials = _values_pull_secrets(docs[0] if docs else None)
        if chart_credentials:
            return
        for node_list in found:
            for ref in _pull_refs(
                node_list,
                target,
                values,
                f"`imagePullSecrets` in {values} of the chart {release} installs",
                True,
            ):
                yield _Ref(
                    ref.namespace, ref.name, ref.path, ref.line, ref.what, True, makes_secrets
                )
    for path in templates:
        if not _holds(repo, path, b"imagePullSecrets"):
            continue
        for named in secrets_mod.references_in_template(path, repo.text(path) or ""):
            if named.field == "imagePullSecrets":
                yield _Ref(
                    target,
                    named.name,
                    path,
                    named.line,
                    f"`imagePullSecrets` in the template {path} of the chart {release} installs",
                    True,
                    makes_secrets,
                )


def _templates(repo: Snapshot, chart: Chart) -> list[str]:
    """The files Helm renders as templates of `chart` (its paths are one sorted slice)."""
    prefix = f"{chart.directory}/" if chart.directory else ""
    start = bisect.bisect_left(repo.paths, prefix)
    found = []
    for path in repo.paths[start:]:
        if not path.startswith(prefix):
            break
        role = repo.chart_role(path)
        if role is not None and role[0] is chart and role[1] == "templates":
            found.append(path)
    return found


def _in_repo_chart(repo: Snapshot, spec: ys.Node | None) -> Chart | None:
    """The chart of this repository a HelmRelease installs from a GitRepository
    (`spec.chart.spec.chart: ./charts/app`)."""
    chart_spec = ys.get(spec, "chart", "spec")
    kind = ys.scalar(ys.get(chart_spec, "sourceRef", "kind"))
    path = ys.scalar(ys.get(chart_spec, "chart"))
    if kind != "GitRepository" or not path or "${" in path:
        return None
    directory = secure_join(path)
    return next((c for c in repo.charts if c.directory == directory), None)


def _helm_namespaces(repo: Snapshot, cluster: Cluster) -> set[str]:
    found = set()
    for obj in cluster.objects():
        if obj.id.kind == "HelmRelease" and obj.id.group == "helm.toolkit.fluxcd.io":
            node = obj.node
            ns = ys.scalar(ys.get(node, "spec", "targetNamespace")) or obj.id.namespace
            if ns:
                found.add(ns)
    return found


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    external = repo.config.external_objects
    reported: set[tuple[str, int]] = set()
    for cluster in repo.build.clusters:
        if not cluster.known:
            continue
        refs = list(_references(repo, cluster))
        if not refs:
            continue
        secrets = _collect(repo, cluster, external)
        if secrets.all_unknown:
            continue
        helm_ns = _helm_namespaces(repo, cluster)
        has_pull = bool(secrets.pull_names(None))
        for ref in refs:
            if (ref.path, ref.line) in reported:
                continue
            if ref.namespace in secrets.unknown_ns or secrets.defined(ref.namespace, ref.name):
                continue
            if ref.pull and not has_pull:
                continue  # this cluster keeps no pull secret in git: they are made by hand
            if not ref.pull and not secrets.by_ns.get(ref.namespace) and not secrets.anywhere:
                continue
            candidates = (
                secrets.pull_names(ref.namespace)
                if ref.pull
                else sorted(secrets.by_ns.get(ref.namespace, {}))
            )
            close = (
                difflib.get_close_matches(ref.name, candidates, n=1, cutoff=0.6)
                or [c for c in candidates if c in ref.name or ref.name in c][:1]
            )
            elsewhere = ""
            if not close and ref.pull:
                close = difflib.get_close_matches(
                    ref.name, secrets.pull_names(None), n=1, cutoff=0.6
                )
                if close:
                    where = sorted(ns for ns, names in secrets.by_ns.items() if close[0] in names)
                    elsewhere = f" It is defined in namespace {', '.join(where)}." if where else ""
            if (ref.helm or ref.namespace in helm_ns) and not close:
                continue  # a chart installed here may make it
            hint = f"; did you mean {close[0]}?" if close else "."
            effect = (
                "Pods that pull from a private registry fail with `ImagePullBackOff`"
                if "imagePullSecrets" in ref.what
                else "the source never becomes ready"
            )
            reported.add((ref.path, ref.line))
            yield ctx.finding(
                ID,
                SEVERITY,
                ref.path,
                ref.line,
                f"{ref.what} names Secret {ref.name}, which nothing on cluster {cluster.name} "
                f"defines in namespace {ref.namespace}{hint}",
                detail=f"{effect[0].upper()}{effect[1:]}.{elsewhere}",
            )
