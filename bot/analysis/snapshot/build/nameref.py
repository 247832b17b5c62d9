"""kustomize's name back references (`api/filters/nameref`, run once at the top of a
build by `FixBackReferences`): where an object was renamed (a prefix, a suffix, a
generator's hash), every field that names it by its old name (a Deployment's
`configMapRef`, a RoleBinding's `subjects`, an HPA's `scaleTargetRef`...) is updated to
the new one. The referring fields are kustomize's `nameReference` table."""

from __future__ import annotations

from collections.abc import Callable

from yaml import nodes as ynodes

from bot.analysis.snapshot.build import fieldspecs
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.ids import group_version
from bot.analysis.snapshot.build.resource import Resource


def _effective(res: Resource, namespace: str | None) -> str:
    return "~cluster" if res.cluster_scoped else (namespace or "default")


def _could_refer(referrer: Resource, target: Resource) -> bool:
    """`SubsetThatCouldBeReferencedByResource`: same namespace, or either is
    cluster-scoped, or a RoleBinding's subjects name the target's namespace."""
    if referrer.cluster_scoped or target.cluster_scoped:
        return True
    if _effective(referrer, referrer.namespace) == _effective(target, target.namespace):
        return True
    if referrer.kind in ("RoleBinding", "ClusterRoleBinding"):
        subjects = yn.get(referrer.node, "subjects")
        if isinstance(subjects, ynodes.SequenceNode):
            namespaces = {yn.text(yn.get(s, "namespace")) for s in subjects.value}
            return target.namespace in namespaces
    return False


def _prev_selected(res: Resource, group: str, version: str, kind: str) -> bool:
    rg, rv = group_version(res.api_version)
    return (
        (not group or group == rg)
        and (not version or version == rv)
        and (not kind or kind == res.kind)
    )


def _select(
    name: str,
    candidates: list[Resource],
    ref: fieldspecs.NameReference,
    referrer: Resource,
    role_ref: tuple[str, str] | None,
    identical: Callable[[list[Resource]], bool],
) -> Resource | None:
    found = [r for r in candidates if any(n == name for n, _ in r.prev)]
    found = [r for r in found if _prev_selected(r, ref.group, ref.version, ref.kind)]
    if role_ref is not None:
        found = [
            r
            for r in found
            if (not role_ref[0] or role_ref[0] == r.group) and role_ref[1] == r.kind
        ]
    if not referrer.cluster_scoped:
        found = [
            r
            for r in found
            if r.cluster_scoped
            or r.kind == "ServiceAccount"
            or _effective(r, r.namespace) == _effective(referrer, referrer.namespace)
        ]
    if len(found) == 1:
        return found[0]
    if found and identical(found):
        return found[0]
    # Several candidates that differ: kustomize fails ("found multiple possible
    # referrals"); the reference is left as it is.
    return None


def fix(resources: list[Resource], config: fieldspecs.Config | None = None) -> list[Resource]:
    # Only objects with an earlier id can be referral targets (kustomize's
    # `previousNameMatches`): renamed ones, and those a namespace transformer saw.
    renamed = [r for r in resources if r.prev]
    if not renamed:
        return resources
    table = config.name_references() if config is not None else fieldspecs.name_references()
    refs = [ref for ref in table if any(ref.refers_to(r.api_version, r.kind) for r in renamed)]
    if not refs:
        return resources
    out = []
    for referrer in resources:
        node: ynodes.Node = referrer.node
        candidates = [r for r in renamed if _could_refer(referrer, r)]
        if not candidates:
            out.append(referrer)
            continue
        for ref in refs:
            targets = [r for r in candidates if ref.refers_to(r.api_version, r.kind)]
            if not targets:
                continue
            for spec in ref.specs:
                if not spec.selects(referrer.api_version, referrer.kind):
                    continue
                role_ref = None
                if spec.path[-2:] == ("roleRef", "name"):
                    rr = yn.get(referrer.node, "roleRef")
                    role_ref = (
                        yn.text(yn.get(rr, "apiGroup")) or "",
                        yn.text(yn.get(rr, "kind")) or "",
                    )
                node = fieldspecs.apply(
                    node,
                    fieldspecs.FieldSpec(spec.group, spec.version, spec.kind, spec.path, False),
                    _setter(targets, ref, referrer, role_ref),
                )
        if node is referrer.node:
            out.append(referrer)
        else:
            assert isinstance(node, ynodes.MappingNode)
            # Not a rename of the referrer: keep its history as it was.
            out.append(
                Resource(
                    node,
                    referrer.path,
                    referrer.line,
                    referrer.doc,
                    referrer.api_version,
                    referrer.kind,
                    referrer.name,
                    referrer.namespace,
                    referrer.generator,
                    referrer.hashed,
                    referrer.prev,
                )
            )
    return out


def _setter(
    targets: list[Resource],
    ref: fieldspecs.NameReference,
    referrer: Resource,
    role_ref: tuple[str, str] | None,
) -> Callable[[ynodes.Node | None, object], ynodes.Node | None]:
    def scalar(node: ynodes.ScalarNode) -> ynodes.Node:
        found = _select(
            node.value, targets, ref, referrer, role_ref, lambda rs: len({r.name for r in rs}) == 1
        )
        if found is None or found.name == node.value:
            return node
        return yn.scalar(found.name, node.start_mark)

    def mapping(node: ynodes.MappingNode) -> ynodes.Node:
        name_node = yn.get(node, "name")
        if not isinstance(name_node, ynodes.ScalarNode):
            return node
        ns_node = yn.get(node, "namespace")
        pool = targets
        if ns_node is not None:
            # `filterMapCandidatesByNamespace`: the candidates grouped by their effective
            # namespace (none written is "default"), the original one first, so that a
            # subject `{name: web, namespace: default}` follows a ServiceAccount written
            # without a namespace to the namespace and name the build gives it.
            ns = yn.text(ns_node) or ""
            by_org = [
                r for r in targets if _effective(r, r.prev[0][1] if r.prev else r.namespace) == ns
            ]
            pool = by_org or [r for r in targets if _effective(r, r.namespace) == ns]
        found = _select(
            name_node.value,
            pool,
            ref,
            referrer,
            role_ref,
            lambda rs: len({(r.name, r.namespace) for r in rs}) == 1,
        )
        if found is None or (found.name == name_node.value and found.namespace is None):
            return node
        node = yn.with_key(node, "name", yn.scalar(found.name, name_node.start_mark))
        if found.namespace is not None:
            node = yn.with_key(
                node, "namespace", yn.scalar(found.namespace, (ns_node or name_node).start_mark)
            )
        return node

    def fn(node: ynodes.Node | None, _path: object) -> ynodes.Node | None:
        if node is None or node.tag == yn.NULL:
            return node
        if isinstance(node, ynodes.ScalarNode):
            return scalar(node)
        if isinstance(node, ynodes.MappingNode):
            return mapping(node)
        if isinstance(node, ynodes.SequenceNode):
            items = [
                scalar(i)
                if isinstance(i, ynodes.ScalarNode)
                else mapping(i)
                if isinstance(i, ynodes.MappingNode)
                else i
                for i in node.value
            ]
            if all(a is b for a, b in zip(items, node.value, strict=True)):
                return node
            return ynodes.SequenceNode(
                node.tag, items, node.start_mark, node.end_mark, node.flow_style
            )
        return node

    return fn
