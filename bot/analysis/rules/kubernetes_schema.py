"""A Kubernetes object that the API server of the cluster's Kubernetes version refuses.

kustomize-controller applies with server-side apply: the API server types every object
against its kind's schema first, so one typo stops the whole Flux Kustomization
(`.spec.replica: field not declared in schema`; `Unsupported value: "Sometimes"`;
`spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 0: must be
between 1 and 65535`), and nothing it applies is updated until it is fixed.

Every object a cluster receives is checked as built: after kustomize, the Flux
Kustomization's patches and post-build substitution, and Helm's render for the
HelmReleases of in-repository charts (with the `helm` extra); where the repository
shows no cluster (something outside applies it), the kustomize build of each of its
kustomization directories. Objects of built-in kinds
are checked against the OpenAPI schema of the cluster's Kubernetes minor (vendored for
the minors still supported and the two before them), with the ranges and enums the API
server's validation code enforces: a field the schema does not declare (with the field
probably meant: `replica` -> `replicas`), a value of the wrong type, a value outside an
enum or a range (ports, `imagePullPolicy`, `restartPolicy`, probe timings...), a
required field that is missing, two list entries with the same key (`env` names). Custom
resources whose CustomResourceDefinition the same cluster applies from this repository
are checked against that CRD's schema; other custom resources are not judged (their
schema is not here).

The finding lands on the line that holds the value: the patch that set it, the
`${VAR}` a substitution replaced (its detail says where the value came from), the chart
template that rendered it (with the HelmRelease, which fails to install or upgrade, as
a related location). Not judged:
a value still holding `${VAR}` (Flux decides it), one substituted from a Secret or from
outside the repository, a SOPS-encrypted value, a `status`, a plain scalar whose type
YAML readers disagree on (`yes`), the CEL rules of CRDs, and Flux's own kinds
(`flux-schema` checks them against the cluster's Flux version).

The Kubernetes version: the config's `kubernetes_version` (per cluster, or for all),
else what the repository says (a Talos, kubeadm, k3s or kind config, a
system-upgrade-controller Plan, Cluster API), else the newest vendored minor, which the
check says once. In a pull request only the objects the change may have changed are
checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from bot.analysis import k8sschemas
from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.k8sschemas.validate import (
    KindValidator,
    ProblemKind,
    SchemaProblem,
    problems,
    validator_for,
)
from bot.analysis.kubeobjects import KubeVersion, Target, locate, targets, value_of
from bot.analysis.lines import split_lines
from bot.analysis.rules.base import Context
from bot.analysis.rules.flux_schema import GROUPS as FLUX_GROUPS
from bot.analysis.snapshot import Snapshot

ID = "kubernetes-schema"
# What a reviewer reads in one line (the scenarios check every message against it).
MESSAGE_LIMIT = 200
SEVERITY = Severity.ERROR


def _judge(
    repo: Snapshot, target: Target
) -> tuple[KindValidator, str, Callable[[Target], str], KubeVersion | None] | None:
    """The validator of the target's kind on its cluster, the context it is judged in,
    and how to name the other side's context; None for an object this rule does not
    judge."""
    api, kind = target.res.api_version, target.res.kind
    if not api or not kind or api.partition("/")[0] in FLUX_GROUPS:
        return None
    peer = repo.peer
    if k8sschemas.is_builtin_group(api):
        version = repo.kube.versions.of(target.cluster, use=False)
        compiled = validator_for(api, kind, version.release)
        if compiled is None:
            return None  # not served by this minor: removed-api-version's, if removed

        def builtin(other: Target) -> str:
            assert peer is not None
            return "k8s " + peer.other.kube.versions.of(other.cluster, use=False).describe()

        return compiled, "k8s " + version.describe(), builtin, version
    crds = repo.kube.crds
    compiled = crds.of(target.cluster).validator_for(api, kind)
    if compiled is None:
        return None

    def custom(other: Target) -> str:
        assert peer is not None
        return "crd " + peer.other.kube.crds.digest(other.cluster, api, kind)

    return compiled, "crd " + crds.digest(target.cluster, api, kind), custom, None


def _instance(target: Target) -> Any:
    value = value_of(target.node)
    if isinstance(value, dict) and isinstance(value.get("sops"), dict):
        # kustomize-controller decrypts an object that carries SOPS metadata and drops
        # the metadata before it applies it.
        value = {k: v for k, v in value.items() if k != "sops"}
        if target.res.kind == "Secret":
            value = {k: v for k, v in value.items() if k not in ("data", "stringData")}
    return value


def _suggestion(repo: Snapshot, file: str, line: int, problem: SchemaProblem) -> str | None:
    """The line with the field meant, for an unknown field written on it."""
    if problem.kind is not ProblemKind.UNKNOWN_FIELD or not problem.suggestion:
        return None
    wrong = problem.path[-1]
    text = repo.text(file)
    if text is None or not isinstance(wrong, str):
        return None
    lines = split_lines(text)
    if not 0 < line <= len(lines):
        return None
    current = lines[line - 1]
    stripped = current.lstrip(" -")
    if not stripped.startswith(f"{wrong}:"):
        return None
    at = len(current) - len(stripped)
    return current[:at] + problem.suggestion + current[at + len(wrong) :]


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    seen: set[tuple[str, int, str]] = set()
    judged_nodes: dict[tuple[int, int], list[SchemaProblem]] = {}
    for target in targets(repo):
        judged = _judge(repo, target)
        if judged is None:
            continue
        compiled, context, other_context, version = judged
        if not target.rendered and repo.raw_template_actions(target.path):
            # Template syntax in a file applied raw is one mistake, reported once, by
            # helm-template-in-raw-manifest; what it breaks here follows from it.
            continue
        if repo.kube.unchanged(target, context, other_context):
            continue
        res = target.res
        # A base that several clusters or overlays apply unchanged is one node tree.
        memo = (id(target.node), id(compiled))
        found = judged_nodes.get(memo)
        if found is None:
            instance = _instance(target)
            what = f"{res.kind} {res.api_version}"
            found = problems(compiled, instance, what) if isinstance(instance, dict) else []
            judged_nodes[memo] = found
        for problem in found:
            file, line, via = locate(
                target.node,
                problem.path,
                target.path,
                key=problem.kind is ProblemKind.UNKNOWN_FIELD,
            )
            name = f"{res.kind} {res.namespace + '/' if res.namespace else ''}{res.name}"
            related: list[Location] = []
            chart = target.applied.rendered_by if target.applied is not None else None
            if chart is not None:
                # helm-controller applies what the chart renders: the release fails.
                release = f"HelmRelease {chart.id.namespace}/{chart.id.name}"
                consequence = f"{release} fails to install or upgrade"
                related.append(Location(chart.path, chart.line, message=f"{release} is here"))
            else:
                applier = target.owner or "the Flux Kustomization applying it"
                consequence = f"{applier} fails to apply it"
            full = f"{problem.message}. The API server refuses {name}, and {consequence}."
            # A message is read in a line of a review: the longest that fits.
            message = (
                next(
                    m
                    for m in (full, f"{problem.message}: {consequence}.", f"{problem.message}.")
                    if len(m) <= MESSAGE_LIMIT
                )
                if len(problem.message) < MESSAGE_LIMIT
                else f"{problem.message}."
            )
            if (file, line, message) in seen:
                continue
            seen.add((file, line, message))
            against = (
                f"Checked against {version.describe()}."
                if version is not None
                else f"Checked against the CustomResourceDefinition of {res.kind} that "
                "the cluster applies from this repository."
            )
            detail = against + (f" The value was {via}." if via else "")
            if target.cluster is not None:
                detail += f" Built for cluster {target.cluster.name}."
            if message != full:
                detail += f" {full}"
            if version is not None:
                repo.kube.versions.of(target.cluster)  # said once, when assumed
            yield ctx.finding(
                ID,
                SEVERITY,
                file,
                line,
                message,
                suggestion=_suggestion(repo, file, line, problem),
                related=related,
                detail=detail,
            )
