"""What each Flux Kustomization applies: the objects of its kustomize build.

The inventory follows kustomize v5.5 (the build kustomize-controller runs) and Flux's
overlay on top of it:
- `resources` (files, directories with a kustomization, nested kustomizations; `bases`
  too), `components` (they add to and transform what the including kustomization has
  accumulated so far), `configMapGenerator` / `secretGenerator` (`behavior: merge` and
  `replace` change an object that is already there and add none; the hash suffix is
  not part of the identity), then the transformers: strategic-merge patches without a
  target must match an object of the build, `namespace` (namespaced objects move, a
  `v1` Namespace object is renamed to it, kinds kustomize knows as cluster-scoped keep
  none), `namePrefix` / `nameSuffix` (all names but Namespaces, CRDs and APIServices).
- Flux: a path without a kustomization file gets the generated index (every `.yaml` /
  `.yml` below it, stopping at directories with their own kustomization); on top of the
  entry point, `spec.targetNamespace` replaces `namespace`, `spec.namePrefix` /
  `spec.nameSuffix` replace those, and `spec.components` are added.

Where the result cannot be known from the repository alone (a remote resource, a Helm
chart generator, generator or transformer plugins, a file that does not parse, a
`spec.path` with a `${VAR}`), the build says so (`known` is false, `unknown` says why)
and keeps what it does know. Object ids holding a `${VAR}` are `templated`: Flux's
post-build substitution decides them.

Directory builds are cached: every parent that includes a directory reuses its build.
Clusters: a root Flux Kustomization (the `flux-system` ones when the repository has
them, else every Flux Kustomization that no build applies) and every Flux Kustomization
it reaches through what it applies; each `raw_paths` entry of the config is a cluster
of its own. A file no cluster reads is not applied.
"""

from __future__ import annotations

import posixpath
import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import yaml

from bot.analysis import yamlscan as ys
from bot.analysis.model import BOOTSTRAP_NAME, KUSTOMIZATION_FILES, FluxObject, secure_join
from bot.analysis.snapshot import Snapshot

FLUX_KS_GROUP = "kustomize.toolkit.fluxcd.io"
# Flux's envsubst forms that names use: ${VAR}, ${VAR:=default}, ${VAR:-default}, ...
_VARIABLE = re.compile(r"\$\{([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[=-])([^}]*))?\}")

# What kustomize v5.5 knows to be cluster-scoped (kyaml/openapi
# precomputedIsNamespaceScoped, from the Kubernetes 1.21 schema). Its namespace
# transformer sets a namespace on every other kind.
KUSTOMIZE_CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("networking.k8s.io", "IngressClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("policy", "PodSecurityPolicy"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("", "ComponentStatus"),
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
    }
)
# Cluster-scoped kinds newer than that schema, and those of widely used operators: on
# the cluster they have no namespace, whatever kustomize wrote into metadata.
CLUSTER_SCOPED: frozenset[tuple[str, str]] = KUSTOMIZE_CLUSTER_SCOPED | {
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceSlice"),
    ("cert-manager.io", "ClusterIssuer"),
    ("external-secrets.io", "ClusterSecretStore"),
    ("external-secrets.io", "ClusterExternalSecret"),
    ("kyverno.io", "ClusterPolicy"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("snapshot.storage.k8s.io", "VolumeSnapshotClass"),
    ("metallb.io", "BGPPeer"),
    ("cilium.io", "CiliumClusterwideNetworkPolicy"),
    ("monitoring.coreos.com", "ClusterScrapeConfig"),
}
# kustomize's PrefixTransformer / SuffixTransformer skip these (by kind, any group for
# the first and the last).
_NO_AFFIX = ("CustomResourceDefinition", "Namespace")


def _group_version(api_version: str) -> tuple[str, str]:
    group, sep, version = api_version.rpartition("/")
    return (group, version) if sep else ("", api_version)


class ObjectId(NamedTuple):
    """An object as it lands on the cluster: namespace None when cluster-scoped (or
    never set: Flux then refuses a namespaced object)."""

    group: str
    version: str
    kind: str
    namespace: str | None
    name: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvk(self) -> str:
        return f"{self.api_version}/{self.kind}" if self.group else f"v1/{self.kind}"

    @property
    def templated(self) -> bool:
        return "${" in self.name or "${" in (self.namespace or "")

    def key(self) -> tuple[str, str, str | None, str]:
        """Identity on the cluster: an object served in two versions is one object."""
        return (self.group, self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


class Applied(NamedTuple):
    """One object of a build, and where it comes from. (A tuple: builds hold many, and
    the garbage collector stops tracking tuples of plain values.)"""

    id: ObjectId
    path: str  # the manifest, or the kustomization file of a generator
    line: int
    doc_index: int  # the document in `path` (-1 for a generated object)
    # The namespace as kustomize holds it (kustomize compares ids with this one).
    build_namespace: str | None = None
    previous_names: tuple[str, ...] = ()
    generator: str | None = None  # "configMapGenerator" / "secretGenerator"
    secret_type: str | None = None  # a secretGenerator's `type`

    def kustomize_id(self) -> tuple[str, str, str, str, str]:
        """kustomize's ResId equality: group, version, kind, name and the effective
        namespace ("" and "default" are one; cluster-scoped kinds have none)."""
        i = self.id
        if (i.group, i.kind) in KUSTOMIZE_CLUSTER_SCOPED:
            ns = "~cluster"
        else:
            ns = self.build_namespace or "default"
        return (i.group, i.version, i.kind, ns, i.name)

    def node(self, repo: Snapshot) -> ys.Node | None:
        if self.doc_index < 0:
            return None
        docs = repo.documents(self.path)
        return docs[self.doc_index] if self.doc_index < len(docs) else None


@dataclass(frozen=True, slots=True)
class Problem:
    """Why kustomize fails a build, found while building it."""

    rule: str  # the rule id that reports it
    path: str
    line: int
    message: str


def _unfollowed(obj: Applied, node: ys.Node | None) -> str:
    """A Flux Kustomization whose content is not in this repository, and its source."""
    ref = ys.get(node, "spec", "sourceRef") if node is not None else None
    kind, name = ys.scalar(ys.get(ref, "kind")), ys.scalar(ys.get(ref, "name"))
    source = f" of {kind} {name}" if kind and name else ""
    return f"Flux Kustomization {obj.id.namespace or ''}/{obj.id.name}{source}".replace(" /", " ")


class Reason(str):
    """Why a build is not fully known, in words ("apps/x.yaml does not parse"), and the
    files whose content makes it so: the change summary says "not fully known" only where
    the change touched one of them."""

    paths: tuple[str, ...]

    def __new__(
        cls, path: str, why: str, *, subject: str | None = None, also: tuple[str, ...] = ()
    ) -> Reason:
        reason = super().__new__(cls, f"{subject or path} {why}")
        reason.paths = (path, *also)
        return reason


@dataclass
class Build:
    """The objects one kustomize (or Flux-generated) build produces."""

    directory: str
    kfile: str | None  # None for Flux's generated index
    objects: list[Applied] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: set[str] = field(default_factory=set)  # every file the build reads
    kfiles: set[str] = field(default_factory=set)  # kustomization files in the build

    @property
    def known(self) -> bool:
        return not self.unknown


@dataclass
class FluxBuild:
    """What one Flux Kustomization (or one `raw_paths` entry) applies."""

    owner: FluxObject | None  # None for a raw_paths entry
    label: str  # "Flux Kustomization flux-system/apps" or "raw_paths entry apps"
    directory: str | None  # None when spec.path is not knowable
    build: Build
    prune: bool

    @property
    def known(self) -> bool:
        return self.directory is not None and self.build.known


@dataclass
class Cluster:
    name: str  # the root's spec.path ("clusters/prod") or the raw_paths entry
    builds: list[FluxBuild] = field(default_factory=list)
    known: bool = True  # every Flux Kustomization's content is known
    files: set[str] = field(default_factory=set)
    # What the cluster applies beyond the builds here: Flux Kustomizations of a source
    # this repository is not (another repository, an OCI artifact, an ExternalArtifact),
    # or with a templated name, in words.
    unfollowed: list[str] = field(default_factory=list)

    def objects(self) -> Iterator[tuple[FluxBuild, Applied]]:
        for fb in self.builds:
            for obj in fb.build.objects:
                yield fb, obj


@dataclass
class _Acc:
    objects: list[Applied] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    kfiles: set[str] = field(default_factory=set)
    index: dict[tuple[str, str, str, str, str], Applied] = field(default_factory=dict)

    def add(self, obj: Applied, where: str | None = None) -> None:
        key = obj.kustomize_id()
        other = self.index.get(key)
        if other is not None:
            # On both definitions, each naming the other: whichever the change added,
            # its file gets the finding.
            self.problems.append(_duplicate(obj, other, where))
            if (other.path, other.line) != (obj.path, obj.line):
                self.problems.append(_duplicate(other, obj, where, first=False))
            return
        self.index[key] = obj
        self.objects.append(obj)

    def merge(self, child: Build, where: str) -> None:
        self.unknown.extend(child.unknown)
        self.files |= child.files
        self.kfiles |= child.kfiles
        for obj in child.objects:
            self.add(obj, where)

    def build(self, directory: str, kfile: str | None) -> Build:
        return Build(
            directory, kfile, self.objects, self.unknown, self.problems, self.files, self.kfiles
        )


def _duplicate(obj: Applied, other: Applied, where: str | None, first: bool = True) -> Problem:
    via = f" (added through {where})" if where else ""
    relation = "is already in this build from" if first else "is added again from"
    return Problem(
        "kustomize-duplicate-resource",
        obj.path,
        obj.line,
        f"{obj.id.gvk} {obj.id.name} {relation} {other.path}:{other.line}{via}: kustomize "
        "fails with `may not add resource with an already registered id`.",
    )


@dataclass(frozen=True)
class _Overlay:
    """What Flux writes into the entry point's kustomization."""

    namespace: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    # (value, line, the directory it is relative to): Flux's spec.components
    components: tuple[tuple[str, int, str], ...] = ()


def _scalar_str(node: ys.Node | None) -> str | None:
    value = ys.scalar(node)
    return value if value else None


def _fields(root: ys.Node | None) -> dict[str, ys.Node]:
    """A kustomization's fields by lower-case name: Go's encoding/json matches a key to a
    field ignoring case (`NamePrefix` is `namePrefix`), and a later key for the same
    field overwrites an earlier one."""
    return {key.lower(): value for key, _, value in ys.pairs(root)}


class Inventory:
    """Builds, clusters and reachability of one repository; use `inventory_of`."""

    def __init__(self, repo: Snapshot) -> None:
        # The repository keeps its inventory (`inventory_of`); a weak reference back
        # makes no cycle, so both go as soon as the analysis drops the repository.
        self._repo = weakref.ref(repo)
        self._dir_builds: dict[str, Build] = {}
        self._crd_scope: dict[tuple[str, str], bool] | None = None
        self.flux_builds: list[FluxBuild] = []
        self.clusters: list[Cluster] = []
        self.roots: list[FluxBuild] = []
        self._applied_files: set[str] = set()
        # A Flux Kustomization of another source (an OCI artifact pushed from this
        # repository, an ExternalArtifact, another branch) or one whose content is not
        # known may apply any file here: then no file is said not to be applied.
        self._opaque = False
        self._patched: set[str] = set()
        self._compute()

    @property
    def repo(self) -> Snapshot:
        repo = self._repo()
        assert repo is not None, "the repository of this inventory is gone"
        return repo

    # --- public -------------------------------------------------------------------

    @property
    def has_roots(self) -> bool:
        """Whether what the repository applies is known: it has clusters, and none of
        them has a Flux Kustomization whose content is not known."""
        return bool(self.clusters) and not self._opaque

    def applied(self, path: str) -> bool:
        """Whether some cluster applies the file; True for every file when what the
        repository applies is not known (`has_roots`)."""
        return not self.has_roots or path in self._applied_files

    def clusters_of(self, path: str) -> list[Cluster]:
        return [c for c in self.clusters if path in c.files]

    def builds(self) -> list[Build]:
        """Every distinct build: Flux builds and the directory builds they include, or
        every kustomization directory when the repository has no roots."""
        seen: dict[int, Build] = {}
        for fb in self.flux_builds:
            seen[id(fb.build)] = fb.build
        if self.has_roots:
            for build in self._dir_builds.values():
                if build.kfile is not None and build.kfile in self._applied_files:
                    seen[id(build)] = build
        else:
            for kfile in self._standalone_kfiles():
                if self._is_component(kfile):
                    continue
                build = self.build_dir(posixpath.dirname(kfile))
                seen[id(build)] = build
        return list(seen.values())

    def problems(self, rule: str) -> list[Problem]:
        out: dict[tuple[str, int, str], Problem] = {}
        for build in self.builds():
            for p in build.problems:
                if p.rule == rule:
                    out.setdefault((p.path, p.line, p.message), p)
        return list(out.values())

    def applied_kfiles(self) -> set[str]:
        if not self.has_roots:
            return set(self._standalone_kfiles())
        return {k for b in self.builds() for k in b.kfiles}

    def _standalone_kfiles(self) -> list[str]:
        """Without roots: every kustomization file but those Helm renders (a chart's
        templates/ are kustomization-in-chart-templates')."""
        repo = self.repo
        return [
            k
            for k in repo.kustomizations
            if (role := repo.chart_role(k)) is None or role[1] != "templates"
        ]

    def flux_build_of(self, obj: FluxObject) -> FluxBuild | None:
        for fb in self.flux_builds:
            if fb.owner is obj:
                return fb
        return None

    # --- kustomize builds ---------------------------------------------------------

    def build_dir(self, directory: str, stack: tuple[str, ...] = ()) -> Build:
        cached = self._dir_builds.get(directory)
        if cached is not None:
            return cached
        kfile = self.repo.kustomization_in(directory)
        acc = _Acc()
        if kfile is None:
            acc.unknown.append(Reason(directory or ".", "has no kustomization file"))
        else:
            self._kustomize(kfile, acc, (*stack, directory), _Overlay())
        build = acc.build(directory, kfile)
        self._dir_builds[directory] = build
        return build

    def _is_component(self, kfile: str) -> bool:
        docs = self.repo.documents(kfile)
        return bool(docs) and ys.scalar(ys.get(docs[0], "kind")) == "Component"

    def _kustomize(self, kfile: str, acc: _Acc, stack: tuple[str, ...], overlay: _Overlay) -> None:
        repo = self.repo
        directory = posixpath.dirname(kfile)
        acc.files.add(kfile)
        acc.kfiles.add(kfile)
        others = [
            name
            for name in KUSTOMIZATION_FILES
            if (f"{directory}/{name}" if directory else name) in repo.path_set
        ]
        if len(others) > 1:
            acc.problems.append(
                Problem(
                    "kustomize-invalid-kustomization",
                    kfile,
                    1,
                    f"{directory or '.'} holds {' and '.join(others)}: kustomize fails with "
                    "`Found multiple kustomization files`.",
                )
            )
        if repo.problem(kfile) is not None:
            acc.unknown.append(Reason(kfile, "does not parse"))
            return
        docs = repo.documents(kfile)
        root = docs[0] if docs else None
        if root is not None and not isinstance(root, yaml.MappingNode):
            acc.unknown.append(Reason(kfile, "is not a mapping"))
            return
        kf = repo.kustomizations.get(kfile)
        entries = kf.entries if kf is not None else []
        for e in entries:
            if e.target is not None and e.target in repo.path_set:
                acc.files.add(e.target)  # patches, configurations, generator inputs...

        # resources (and the deprecated bases, which kustomize appends to them)
        for e in [e for e in entries if e.field == "resources"] + [
            e for e in entries if e.field == "bases"
        ]:
            where = f"`{e.value}` in {kfile}"
            if e.remote or e.target is None:
                acc.unknown.append(
                    Reason(kfile, f"is {'remote' if e.remote else 'outside'}", subject=where)
                )
                continue
            if "${" in e.value or "{{" in e.value:
                acc.unknown.append(Reason(kfile, "is a template", subject=where))
                continue
            target = e.target
            if target in repo.path_set:
                if posixpath.basename(target) in KUSTOMIZATION_FILES:
                    acc.unknown.append(
                        Reason(kfile, "names a kustomization file as a resource", subject=where)
                    )
                    continue
                self._add_file(target, acc, where)
            elif repo.is_dir(target):
                if repo.kustomization_in(target) is None:
                    acc.unknown.append(
                        Reason(kfile, "has no kustomization file", subject=where, also=(target,))
                    )
                    continue
                if target in stack:
                    acc.problems.append(
                        Problem(
                            "kustomize-invalid-kustomization",
                            kfile,
                            e.line,
                            f"`{e.value}` includes {target or '.'}, which is already being "
                            "built on the way here: kustomize fails with `cycle detected`.",
                        )
                    )
                    continue
                acc.merge(self.build_dir(target, stack), where)
            else:
                acc.unknown.append(Reason(kfile, "does not exist", subject=where, also=(target,)))

        # components: they work on what this kustomization has accumulated so far
        components: list[tuple[str, int, str | None, bool]] = [
            (e.value, e.line, e.target, e.remote) for e in entries if e.field == "components"
        ]
        for value, line, base in overlay.components:
            components.append((value, line, secure_join(posixpath.join(base, value)), False))
        for value, line, ctarget, remote in components:
            where = f"component `{value}` of {kfile}"
            if remote or ctarget is None:
                acc.unknown.append(Reason(kfile, "is remote", subject=where))
                continue
            target = ctarget
            ckfile = repo.kustomization_in(target) if repo.is_dir(target) else None
            if ckfile is None:
                acc.unknown.append(Reason(kfile, "has no kustomization file", subject=where))
                continue
            if target in stack:
                acc.problems.append(
                    Problem(
                        "kustomize-invalid-kustomization",
                        kfile,
                        line,
                        f"component `{value}` includes {target}, which is already being built "
                        "on the way here: kustomize fails with `cycle detected`.",
                    )
                )
                continue
            self._kustomize(ckfile, acc, (*stack, target), _Overlay())

        if root is None:
            return
        fields = _fields(root)
        self._generators(kfile, fields, acc)
        for name in ("helmCharts", "helmChartInflationGenerator", "generators", "transformers"):
            if ys.items(fields.get(name.lower())):
                acc.unknown.append(Reason(kfile, f"uses `{name}`"))
        replacements = fields.get("replacements")
        if replacements is not None and _mentions_identity(replacements):
            acc.unknown.append(Reason(kfile, "replaces names or namespaces"))
        if "patches" in fields or "patchesstrategicmerge" in fields:
            self._check_patches(kfile, fields, acc)

        namespace = overlay.namespace or _scalar_str(fields.get("namespace"))
        prefix = (
            overlay.prefix if overlay.prefix is not None else _scalar_str(fields.get("nameprefix"))
        )
        suffix = (
            overlay.suffix if overlay.suffix is not None else _scalar_str(fields.get("namesuffix"))
        )
        if namespace or prefix or suffix:
            self._transform(acc, kfile, namespace, prefix or "", suffix or "")

    def _add_file(self, path: str, acc: _Acc, where: str) -> None:
        acc.files.add(path)
        objects, unknown = self._objects_in(path)
        acc.unknown.extend(unknown)
        for obj in objects:
            acc.add(obj, where)

    def _objects_in(self, path: str) -> tuple[list[Applied], list[str]]:
        repo = self.repo
        info = repo.yaml_info(path)
        objects: list[Applied] = []
        unknown: list[str] = []
        if info.problem is not None:
            unknown.append(Reason(path, "does not parse"))
        else:
            for index, doc in enumerate(info.docs):
                if doc.root == "empty":
                    continue
                if doc.has_items and (doc.kind or "").endswith("List"):
                    objects.extend(self._list_items(path, index, unknown))
                    continue
                if doc.root != "mapping" or not doc.kind or not doc.api_version or not doc.name:
                    unknown.append(Reason(path, "holds a document without kind or name"))
                    continue
                group, version = _group_version(doc.api_version)
                ns = doc.namespace or None
                objects.append(
                    Applied(
                        ObjectId(
                            group,
                            version,
                            doc.kind,
                            self._cluster_ns(group, doc.kind, ns),
                            doc.name,
                        ),
                        path,
                        doc.name_line or doc.line,
                        index,
                        build_namespace=ns,
                    )
                )
        return objects, unknown

    def _list_items(self, path: str, index: int, unknown: list[str]) -> list[Applied]:
        docs = self.repo.documents(path)
        if index >= len(docs):
            return []
        found = []
        for item in ys.items(ys.get(docs[index], "items")):
            kind = ys.scalar(ys.get(item, "kind"))
            api = ys.scalar(ys.get(item, "apiVersion"))
            name_node = ys.get(item, "metadata", "name")
            name = ys.scalar(name_node)
            if not kind or not api or not name or name_node is None:
                unknown.append(Reason(path, "holds a list item without kind or name"))
                continue
            group, version = _group_version(api)
            ns = ys.scalar(ys.get(item, "metadata", "namespace"))
            found.append(
                Applied(
                    ObjectId(group, version, kind, self._cluster_ns(group, kind, ns), name),
                    path,
                    ys.line_of(name_node),
                    -1,
                    build_namespace=ns,
                )
            )
        return found

    def _cluster_ns(self, group: str, kind: str, namespace: str | None) -> str | None:
        if not namespace:
            return None
        key = (group, kind)
        if key in CLUSTER_SCOPED:
            return None
        if self._crd_scope is None:
            self._crd_scope = self._crd_scopes()
        if self._crd_scope.get(key) is False:
            return None
        return namespace

    def _crd_scopes(self) -> dict[tuple[str, str], bool]:
        """(group, kind) -> namespaced, for the CRDs the repository holds."""
        scopes: dict[tuple[str, str], bool] = {}
        repo = self.repo
        for path in repo.paths:
            if not path.endswith((".yaml", ".yml")):
                continue
            data = repo.data(path)
            if not data or b"CustomResourceDefinition" not in data:
                continue
            for doc in repo.documents(path):
                if ys.scalar(ys.get(doc, "kind")) != "CustomResourceDefinition":
                    continue
                spec = ys.get(doc, "spec")
                group = ys.scalar(ys.get(spec, "group"))
                kind = ys.scalar(ys.get(spec, "names", "kind"))
                scope = ys.scalar(ys.get(spec, "scope"))
                if group and kind and scope:
                    scopes[(group, kind)] = scope != "Cluster"
        return scopes

    def _generators(self, kfile: str, fields: dict[str, ys.Node], acc: _Acc) -> None:
        for fieldname, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
            for item in ys.items(fields.get(fieldname.lower())):
                name_node = ys.get(item, "name")
                name = ys.scalar(name_node)
                behavior = ys.scalar(ys.get(item, "behavior")) or "create"
                for sub in ("files", "envs", "env"):
                    single = ys.get(item, sub)
                    for f in ys.items(single) or ([single] if single is not None else []):
                        value = ys.scalar(f)
                        if value:
                            rel = value.split("=", 1)[-1].strip()
                            acc.files.add(
                                secure_join(posixpath.join(posixpath.dirname(kfile), rel))
                            )
                if not name or name_node is None or behavior != "create":
                    continue
                ns = ys.scalar(ys.get(item, "namespace"))
                acc.add(
                    Applied(
                        ObjectId("", "v1", kind, self._cluster_ns("", kind, ns), name),
                        kfile,
                        ys.line_of(name_node),
                        -1,
                        build_namespace=ns,
                        generator=fieldname,
                        secret_type=ys.scalar(ys.get(item, "type")) if kind == "Secret" else None,
                    ),
                    f"`{fieldname}` of {kfile}",
                )

    def _check_patches(self, kfile: str, fields: dict[str, ys.Node], acc: _Acc) -> None:
        """Strategic-merge patches without a target must each match an object (kustomize:
        `no matches for Id ...; failed to find unique target for patch`). Matched here by
        kind and any name the object has had, in any namespace, so that nothing is
        reported that kustomize would apply."""
        directory = posixpath.dirname(kfile)
        patches: list[tuple[int, str | None, str | None]] = []  # (line, file, inline)
        for item in ys.items(fields.get("patches")):
            if ys.get(item, "target") is not None:
                continue
            path_node = ys.get(item, "path")
            patch_node = ys.get(item, "patch")
            if path_node is not None and ys.scalar(path_node):
                patches.append((ys.line_of(path_node), ys.scalar(path_node), None))
            elif patch_node is not None and ys.scalar(patch_node):
                patches.append((ys.line_of(patch_node), None, ys.scalar(patch_node)))
        for item in ys.items(fields.get("patchesstrategicmerge")):
            value = ys.scalar(item)
            if not value:
                continue
            if "\n" in value or ": " in value:
                patches.append((ys.line_of(item), None, value))
            else:
                patches.append((ys.line_of(item), value, None))
        if not patches:
            return
        for line, rel, inline in patches:
            if rel is not None:
                if "${" in rel or "://" in rel:
                    continue
                path = secure_join(posixpath.join(directory, rel))
                if path not in self.repo.path_set or self.repo.problem(path) is not None:
                    continue
                acc.files.add(path)
                targets = self._patch_ids(self.repo.documents(path))
            else:
                try:
                    targets = self._patch_ids(ys.compose_all(inline or ""))
                except yaml.YAMLError:
                    continue
            if acc.unknown:
                continue  # what is unknown might be the target
            for kind, name in targets:
                if "${" in name:
                    continue
                if not any(
                    o.id.kind == kind and (o.id.name == name or name in o.previous_names)
                    for o in acc.objects
                ):
                    acc.problems.append(
                        Problem(
                            "kustomize-invalid-kustomization",
                            kfile,
                            line,
                            f"the patch for {kind} {name} matches nothing in this build: "
                            "kustomize fails with `no matches for Id ...; failed to find unique "
                            "target for patch`.",
                        )
                    )

    @staticmethod
    def _patch_ids(docs: list[ys.Node]) -> list[tuple[str, str]]:
        ids = []
        for doc in docs:
            if not isinstance(doc, yaml.MappingNode):
                continue  # a JSON 6902 patch (a list) needs a target: not this check
            kind = ys.scalar(ys.get(doc, "kind"))
            name = ys.scalar(ys.get(doc, "metadata", "name"))
            if kind and name:
                ids.append((kind, name))
        return ids

    def _transform(
        self, acc: _Acc, kfile: str, namespace: str | None, prefix: str, suffix: str
    ) -> None:
        out: list[Applied] = []
        for obj in acc.objects:
            i = obj.id
            name = i.name
            build_ns = obj.build_namespace
            if namespace:
                if (i.group, i.kind) not in KUSTOMIZE_CLUSTER_SCOPED:
                    build_ns = namespace
                elif i.kind == "Namespace" and i.api_version == "v1":
                    name = namespace
            if (
                (prefix or suffix)
                and i.kind not in _NO_AFFIX
                and not (i.group == "apiregistration.k8s.io" and i.kind == "APIService")
            ):
                name = f"{prefix}{name}{suffix}"
            if name == i.name and build_ns == obj.build_namespace:
                out.append(obj)
                continue
            new_id = i._replace(name=name, namespace=self._cluster_ns(i.group, i.kind, build_ns))
            previous = obj.previous_names + ((i.name,) if name != i.name else ())
            out.append(obj._replace(id=new_id, build_namespace=build_ns, previous_names=previous))
        acc.objects = []
        acc.index = {}
        for obj in out:
            acc.add(obj, f"the namespace or name transformer of {kfile}")

    # --- Flux ---------------------------------------------------------------------

    def _flux_build(self, obj: FluxObject) -> FluxBuild:
        spec = ys.get(obj.node, "spec")
        label = f"Flux Kustomization {obj.namespace + '/' if obj.namespace else ''}{obj.name}"
        prune = (ys.scalar(ys.get(spec, "prune")) or "").lower() == "true"
        path_value = ys.scalar(ys.get(spec, "path")) or ""
        if "${" in path_value:
            return FluxBuild(
                obj,
                label,
                None,
                Build("", None, unknown=[f"spec.path of {label} is substituted"]),
                prune,
            )
        directory = secure_join(path_value)
        # relative to spec.path, not to the file of the Kustomization
        components = tuple(
            (v, ys.line_of(c), directory)
            for c in ys.items(ys.get(spec, "components"))
            if (v := ys.scalar(c))
        )
        overlay = _Overlay(
            namespace=_scalar_str(ys.get(spec, "targetNamespace")),
            prefix=ys.scalar(ys.get(spec, "namePrefix")),
            suffix=ys.scalar(ys.get(spec, "nameSuffix")),
            components=components,
        )
        build = self._entry_build(directory, overlay)
        post = ys.get(spec, "postBuild")
        if post is not None:
            build = self._substituted(build, post)
        return FluxBuild(obj, label, directory, build, prune)

    def _substituted(self, build: Build, post: ys.Node) -> Build:
        """Flux's post-build substitution of names and namespaces, from the inline
        `substitute` values (and `${VAR:=default}` defaults when no `substituteFrom`
        may define the variable). What stays unresolved stays templated."""
        values = {
            k: v
            for k, _, node in ys.pairs(ys.get(post, "substitute"))
            if (v := ys.scalar(node)) is not None
        }
        more = bool(ys.items(ys.get(post, "substituteFrom"))) or "postBuild" in self._patched

        def fill(text: str) -> str:
            def one(m: re.Match[str]) -> str:
                name, op, default = m.group(1), m.group(2), m.group(3)
                if name in values:
                    return values[name]
                if op and not more:
                    return default or ""
                return m.group(0)

            for _ in range(3):  # a default may hold a variable: `${A:-${B}}`
                filled = _VARIABLE.sub(one, text)
                if filled == text:
                    break
                text = filled
            return text

        objects = []
        changed = False
        for obj in build.objects:
            i = obj.id
            if not i.templated:
                objects.append(obj)
                continue
            name = fill(i.name)
            namespace = fill(i.namespace) if i.namespace else i.namespace
            changed = True
            objects.append(
                obj._replace(
                    id=i._replace(name=name, namespace=namespace),
                    previous_names=(*obj.previous_names, i.name),
                )
            )
        if not changed:
            return build
        return Build(
            build.directory,
            build.kfile,
            objects,
            build.unknown,
            build.problems,
            build.files,
            build.kfiles,
        )

    def _entry_build(self, directory: str, overlay: _Overlay) -> Build:
        repo = self.repo
        if directory and not repo.is_dir(directory):
            return Build(directory, None, unknown=[Reason(directory, "does not exist")])
        kfile = repo.kustomization_in(directory)
        if kfile is not None:
            if overlay == _Overlay():
                return self.build_dir(directory)
            acc = _Acc()
            self._kustomize(kfile, acc, (directory,), overlay)
            return acc.build(directory, kfile)
        # Flux's generated index: every manifest below, each directory with its own
        # kustomization as one resource.
        acc = _Acc()
        manifests, kfiles = repo.flux_raw_walk(directory)
        for path in manifests:
            self._add_file(path, acc, f"the index Flux generates for {directory or '.'}")
        for sub in kfiles:
            acc.merge(
                self.build_dir(posixpath.dirname(sub), (directory,)),
                f"the index Flux generates for {directory or '.'}",
            )
        for value, _line, base in overlay.components:
            target = secure_join(posixpath.join(base, value))
            ckfile = repo.kustomization_in(target) if repo.is_dir(target) else None
            if ckfile is None:
                acc.unknown.append(f"component `{value}` has no kustomization file")
                continue
            self._kustomize(ckfile, acc, (directory, target), _Overlay())
        if overlay.namespace or overlay.prefix or overlay.suffix:
            self._transform(
                acc,
                f"the index Flux generates for {directory or '.'}",
                overlay.namespace,
                overlay.prefix or "",
                overlay.suffix or "",
            )
        return acc.build(directory, None)

    @staticmethod
    def _kustomization_patches(flux_ks: list[FluxObject]) -> set[str]:
        """Fields of Flux Kustomizations that some parent's `spec.patches` set on the
        Kustomizations it applies (`postBuild` defaults, a `targetNamespace`)."""
        patched: set[str] = set()
        for o in flux_ks:
            for item in ys.items(ys.get(o.node, "spec", "patches")):
                target = ys.get(item, "target")
                kind = ys.scalar(ys.get(target, "kind"))
                text = ys.scalar(ys.get(item, "patch")) or ""
                if target is not None and kind not in (None, "Kustomization"):
                    continue
                if "kustomize.toolkit.fluxcd.io" not in text and kind is None:
                    continue
                for name in (
                    "postBuild",
                    "targetNamespace",
                    "namePrefix",
                    "nameSuffix",
                    "components",
                    "path",
                ):
                    if re.search(rf"^\s*{name}:", text, re.M):
                        patched.add(name)
        return patched

    def _bootstrap_dirs(self, taken: set[str | None]) -> list[str]:
        """Directories that `flux bootstrap` syncs although the repository holds no
        `flux-system` Kustomization for them (its gotk-sync.yaml left out or a
        placeholder): `D` with a `D/flux-system/gotk-components.yaml` or gotk-sync.yaml."""
        found = []
        for path in self.repo.paths:
            if posixpath.basename(path) not in ("gotk-components.yaml", "gotk-sync.yaml"):
                continue
            flux_dir = posixpath.dirname(path)
            if posixpath.basename(flux_dir) != BOOTSTRAP_NAME:
                continue
            directory = posixpath.dirname(flux_dir)
            if directory not in taken and directory not in found:
                found.append(directory)
        return found

    def _compute(self) -> None:
        repo = self.repo
        flux_ks = [
            o
            for o in repo.objects_of("Kustomization")
            if o.group == FLUX_KS_GROUP and repo.is_self_source(o)
        ]
        by_node = {id(o.node): o for o in flux_ks}
        self._patched = self._kustomization_patches(flux_ks)
        builds = {id(o): self._flux_build(o) for o in flux_ks}
        bootstrap = [builds[id(o)] for o in flux_ks if o.name == BOOTSTRAP_NAME]
        implicit = [
            FluxBuild(
                None, f"the flux bootstrap of {d or '.'}", d, self._entry_build(d, _Overlay()), True
            )
            for d in self._bootstrap_dirs({fb.directory for fb in bootstrap})
        ]
        self.flux_builds = list(builds.values()) + implicit
        children: dict[int, list[FluxBuild]] = {}
        applied_by_other: set[int] = set()
        # A parent that patches what its Kustomizations build changes what they apply.
        self._opaque = bool(self._patched - {"postBuild"})
        for fb in self.flux_builds:
            kids = []
            for a in fb.build.objects:
                if a.id.kind != "Kustomization" or a.id.group != FLUX_KS_GROUP:
                    continue
                node = a.node(repo)
                child = by_node.get(id(node)) if node is not None else None
                if child is None:
                    # Another source's content (or one this build cannot place).
                    self._opaque = True
                elif child is not fb.owner:
                    kids.append(builds[id(child)])
                    applied_by_other.add(id(child))
            children[id(fb)] = kids
        roots = bootstrap + implicit or [
            builds[id(o)] for o in flux_ks if id(o) not in applied_by_other
        ]
        self.roots = roots
        for root in roots:
            cluster = Cluster(
                root.directory
                if root.directory is not None
                else (root.owner.path if root.owner else "?")
            )
            seen: set[int] = set()
            stack = [root]
            while stack:
                cfb = stack.pop()
                if id(cfb) in seen:
                    continue
                seen.add(id(cfb))
                cluster.builds.append(cfb)
                cluster.files |= cfb.build.files
                if cfb.owner is not None:
                    cluster.files.add(cfb.owner.path)
                if not cfb.known:
                    cluster.known = False
                    self._opaque = True
                for obj in cfb.build.objects:
                    if obj.id.templated:
                        cluster.known = False
                        cluster.unfollowed.append(f"{obj.id} (a name Flux substitutes)")
                    elif obj.id.group == FLUX_KS_GROUP and obj.id.kind == "Kustomization":
                        node = obj.node(repo)
                        if node is None or id(node) not in by_node:
                            cluster.known = False
                            cluster.unfollowed.append(_unfollowed(obj, node))
                stack.extend(children[id(cfb)])
            self.clusters.append(cluster)
        for raw in repo.config.raw_paths:
            build = self._entry_build(raw, _Overlay())
            fb = FluxBuild(None, f"raw_paths entry {raw or '.'}", raw, build, False)
            self.flux_builds.append(fb)
            cluster = Cluster(raw or ".", [fb], build.known, set(build.files))
            self.clusters.append(cluster)
        for cluster in self.clusters:
            self._applied_files |= cluster.files


def _mentions_identity(node: ys.Node) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.ScalarNode):
            if current.value.startswith(("metadata.name", "metadata.namespace")):
                return True
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            stack.extend(v for _, v in current.value)
    return False


def inventory_of(repo: Snapshot) -> Inventory:
    """The inventory of a repository, computed once and shared by every rule. It is
    kept on the repository itself, so that it goes when the repository goes."""
    found = vars(repo).get("_inventory")
    if not isinstance(found, Inventory):
        found = Inventory(repo)
        vars(repo)["_inventory"] = found
    return found
