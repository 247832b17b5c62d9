"""kustomize v5.5's build, with content, as kustomize-controller runs it.

The order is kustomize's (`api/internal/target/kusttarget.go`): a kustomization
accumulates its `resources` (a file's objects, or a directory's whole build with its own
transformers already applied), runs its generators, then its `components` (each works on
what has been accumulated so far: its resources are added, its generators and
transformers run on everything), then its own transformers in kustomize's fixed order.
Only at the very top (`makeCustomizedResMap`) are the content hashes added to generated
names and the references to renamed objects fixed.

What cannot be known from the repository alone (a remote base, a Helm chart generator, a
plugin, a file that does not parse) makes the build "not fully known" (`unknown`), never
guessed; everything else is built.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml
from yaml import nodes as ynodes

from bot.analysis import yamlscan as ys
from bot.analysis.model import _REMOTE, KUSTOMIZATION_FILES, Reader, secure_join
from bot.analysis.snapshot.build import (
    fieldspecs,
    generators,
    kustfile,
    nameref,
    smp,
    transformers,
)
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.kustfile import KustFile
from bot.analysis.snapshot.build.problems import BuildProblem, ProblemKind, Unknown
from bot.analysis.snapshot.build.resource import ResMap, Resource
from bot.analysis.snapshot.build.source import View

_DIR = "kustomize-directory"
_PATCH = "strategic-merge-patch"
_MERGE = "strategic-merge"

# Manifests larger than this are not built (see `Kustomizer.load_objects`).
MAX_BUILD_BYTES = 8 * 2**20


@dataclass(frozen=True, slots=True)
class Read:
    """A file a build reads: how, and which file (and line) makes it read."""

    path: str  # repository path
    reader: Reader
    source: str  # the kustomization file that lists it ("" for Flux's generated index)
    line: int


@dataclass
class Accumulated:
    """What one kustomization accumulates (kustomize's ResAccumulator), before the
    top-level name hashes and back references."""

    resmap: ResMap = field(default_factory=ResMap)
    unknown: list[Unknown] = field(default_factory=list)
    problems: list[BuildProblem] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    config: fieldspecs.Config = field(default_factory=fieldspecs.Config.empty)

    def absorb(self, other: Accumulated, where: str) -> None:
        self.config.merge(other.config)
        self.unknown.extend(other.unknown)
        self.problems.extend(other.problems)
        self.reads.extend(other.reads)
        for res in other.resmap:
            self.resmap.append(res, self.problems, where)


@dataclass
class Built:
    """A finished build: its objects and everything known about how they were made."""

    directory: str
    kfile: str | None  # None for Flux's generated index
    resources: list[Resource]
    unknown: list[Unknown]
    problems: list[BuildProblem]
    reads: list[Read]

    @property
    def known(self) -> bool:
        return not self.unknown

    @property
    def files(self) -> set[str]:
        return {r.path for r in self.reads}


class Files(Protocol):
    """What the build needs of a snapshot's files (the snapshot itself implements it)."""

    def documents(self, path: str) -> list[ynodes.Node]: ...

    def problem(self, path: str) -> ys.YamlProblem | None: ...

    def data(self, path: str) -> bytes | None: ...


class Asked:
    """What builds asked of their source and files: each question to the view with its
    answer, and the blob id of each file read. A build is a function of these alone, so
    another commit that gives the same answers gets the same build."""

    __slots__ = ("blobs", "view")

    def __init__(self) -> None:
        self.view: dict[tuple[str, str], object] = {}
        self.blobs: dict[str, str | None] = {}

    def absorb(self, other: Asked) -> None:
        self.view.update(other.view)
        self.blobs.update(other.blobs)

    def holds(self, view: View, blob_id: Callable[[str], str | None]) -> bool:
        """Whether `view` and the files behind `blob_id` answer as recorded."""
        for (question, arg), answer in self.view.items():
            if getattr(view, question)(arg) != answer:
                return False
        return all(blob_id(path) == blob for path, blob in self.blobs.items())


class _RecordingView(View):
    """A view that notes every answer it gives in the `Asked` of each build under way."""

    def __init__(self, inner: View, active: list[Asked]) -> None:
        self.inner = inner
        self.label = inner.label
        self.active = active

    def _noted(self, question: str, arg: str, answer: Any) -> Any:
        for asked in self.active:
            asked.view[(question, arg)] = answer
        return answer

    def real(self, path: str) -> str | None:
        return self._noted("real", path, self.inner.real(path))  # type: ignore[no-any-return]

    def is_dir(self, path: str) -> bool:
        return self._noted("is_dir", path, self.inner.is_dir(path))  # type: ignore[no-any-return]

    def files_in(self, directory: str) -> list[str]:
        return self._noted("files_in", directory, self.inner.files_in(directory))  # type: ignore[no-any-return]

    def subdirs(self, directory: str) -> list[str]:
        return self._noted("subdirs", directory, self.inner.subdirs(directory))  # type: ignore[no-any-return]


class _RecordingFiles:
    """The snapshot's files, noting the blob id of each file a build reads."""

    def __init__(self, inner: Files, blob_id: Callable[[str], str | None], active: list[Asked]):
        self.inner = inner
        self.blob_id = blob_id
        self.active = active

    def _note(self, path: str) -> None:
        if self.active:
            blob = self.blob_id(path)
            for asked in self.active:
                asked.blobs[path] = blob

    def documents(self, path: str) -> list[ynodes.Node]:
        self._note(path)
        return self.inner.documents(path)

    def problem(self, path: str) -> ys.YamlProblem | None:
        self._note(path)
        return self.inner.problem(path)

    def data(self, path: str) -> bytes | None:
        self._note(path)
        return self.inner.data(path)


class Kustomizer:
    """Builds directories of one source's view. Directory builds are cached: every parent
    that includes a directory shares its (immutable) result.

    When the files say their blob ids, every question a build asks is noted in the
    `Asked` of each build under way (`recording`), cached results included: what a
    build read is then known exactly, for reusing it on another commit."""

    def __init__(
        self,
        view: View,
        files: Files,
        shared: dict[object, object] | None = None,
        owner: object = None,
    ) -> None:
        self.active: list[Asked] = []
        blob_id = getattr(files, "blob_id", None)
        self.records = blob_id is not None
        self._blob_id = blob_id
        self._raw_view = view
        self.view: View = _RecordingView(view, self.active) if self.records else view
        self.files: Files = (
            _RecordingFiles(files, blob_id, self.active) if blob_id is not None else files
        )
        self._dirs: dict[str, tuple[Accumulated, Asked]] = {}
        self._kfiles: dict[str, tuple[KustFile, Asked]] = {}
        # What other commits' builds made (`shared`, keyed by content) and which of
        # them are this commit's own (`owner`): a directory's build, a patch's merge.
        self.shared = shared if self.records else None
        self.owner = owner
        self._patches: dict[int, tuple[ynodes.Node, object]] = {}

    def _replay(self, asked: Asked) -> None:
        for outer in self.active:
            outer.absorb(asked)

    @contextmanager
    def recording(self) -> Iterator[Asked]:
        """Notes what is read within, in the `Asked` it gives."""
        asked = Asked()
        self.active.append(asked)
        try:
            yield asked
        finally:
            self.active.remove(asked)

    # --- reading ------------------------------------------------------------------

    def read_kustfile(self, view_path: str) -> KustFile | None:
        """The kustomization file at `view_path`, read; None when it does not parse."""
        cached = self._kfiles.get(view_path)
        if cached is not None:
            self._replay(cached[1])
            return cached[0]
        with self.recording() as asked:
            real = self.view.real(view_path)
            if real is None or self.files.problem(real) is not None:
                self._replay(asked)
                return None
            docs = self.files.documents(real)
            # Paths inside are relative to the kustomization's place in the artifact.
            found = kustfile.read(real, docs[0] if docs else None, posixpath.dirname(view_path))
        self._replay(asked)
        self._kfiles[view_path] = (found, asked)
        return found

    def load_objects(self, view_path: str, acc: Accumulated, where: str) -> list[Resource]:
        """The objects of one manifest (a `List`'s items one by one, as kustomize reads
        them)."""
        real = self.view.real(view_path)
        assert real is not None
        if self.files.problem(real) is not None:
            acc.unknown.append(Unknown(real, "does not parse", (real,), fails=True))
            return []
        size = len(self.files.data(real) or b"")
        if size > MAX_BUILD_BYTES:
            # The API server takes objects of about 1.5 MiB at most (etcd's request
            # limit): a manifest this large is a bundle of many, or a mistake, and
            # composing it costs seconds of a review. Its syntax is still checked.
            acc.unknown.append(
                Unknown(real, f"is too large to build ({size // 2**20} MiB)", (real,))
            )
            return []
        out: list[Resource] = []
        # kustomize pushes a List's items to the end of the file's queue.
        items: list[Resource] = []
        for index, doc in enumerate(self.files.documents(real)):
            if not isinstance(doc, ynodes.MappingNode):
                if yn.text(doc) is None and not isinstance(doc, ynodes.SequenceNode):
                    continue  # an empty document
                acc.unknown.append(Unknown(real, "holds a document that is not an object", (real,)))
                continue
            kind = yn.text(yn.get(doc, "kind")) or ""
            list_items = yn.get(doc, "items")
            if kind.endswith("List") and isinstance(list_items, ynodes.SequenceNode):
                for item in list_items.value:
                    if isinstance(item, ynodes.MappingNode) and _identified(item):
                        items.append(_annotations_as_strings(Resource.of(item, real, -1)))
                    else:
                        acc.unknown.append(
                            Unknown(real, "holds a list item without kind or name", (real,))
                        )
                continue
            if not _identified(doc):
                if not doc.value:
                    continue
                acc.unknown.append(Unknown(real, "holds a document without kind or name", (real,)))
                continue
            out.append(_annotations_as_strings(Resource.of(doc, real, index)))
        return out + items

    # --- building -----------------------------------------------------------------

    def build_dir(self, directory: str, stack: tuple[str, ...] = ()) -> Accumulated:
        cached = self._dirs.get(directory)
        if cached is not None:
            self._replay(cached[1])
            return cached[0]
        key = (_DIR, type(self._raw_view).__name__, self.view.label, directory, stack)
        shared = self.shared
        if shared is not None and self._blob_id is not None:
            entries = shared.get(key)
            for owner, asked, acc in entries if isinstance(entries, list) else ():
                if owner is not self.owner and asked.holds(self._raw_view, self._blob_id):
                    self._replay(asked)
                    self._dirs[directory] = (acc, asked)
                    return acc  # type: ignore[no-any-return]
        acc = Accumulated()
        with self.recording() as asked:
            kpath = self.view.kustomization_in(directory)
            kf = self.read_kustfile(kpath) if kpath is not None else None
            if kpath is None:
                acc.unknown.append(Unknown(directory or ".", "has no kustomization file", ()))
            elif kf is None:
                real = self.view.real(kpath) or kpath
                acc.unknown.append(Unknown(real, "does not parse", (real,), fails=True))
            else:
                self.accumulate(kf, acc, (*stack, directory))
        self._replay(asked)
        self._dirs[directory] = (acc, asked)
        if shared is not None:
            entries = shared.setdefault(key, [])
            assert isinstance(entries, list)
            entries[:] = [*entries[-3:], (self.owner, asked, acc)]
        return acc

    def merge(
        self,
        patch: ynodes.Node,
        res: Resource,
        allow: tuple[bool, bool],
        keep: Callable[[ynodes.Node | None], ynodes.Node | None],
    ) -> ynodes.Node | None:
        """`keep(smp.merge(...))` of `patch` into `res` (`allow`: the patch's options that
        `keep` reads), shared with the other commits' builds that merged the same patch
        (equal YAML at equal places) into the same node: a parent that patches every
        child merges again only the children the change touched, and the others stay
        the very nodes they were, for what is keyed by node after."""
        schema = fieldspecs.Schema.of(res.api_version, res.kind)
        shared = self.shared
        if shared is None:
            return keep(smp.merge(patch, res.node, schema))
        known = self._patches.get(id(patch))
        if known is None or known[0] is not patch:
            try:
                token = shared.setdefault((_PATCH, yn.fingerprint(patch)), object())
            except RecursionError:
                return keep(smp.merge(patch, res.node, schema))
            known = self._patches[id(patch)] = (patch, token)
        node, api, kind = res.node, res.api_version, res.kind
        key = (_MERGE, known[1], id(node), api, kind, res.name, res.namespace, allow)
        found = shared.get(key)
        if isinstance(found, tuple) and found[0] is res.node:
            if isinstance(found[1], smp.MergeFailed):
                raise found[1]
            return found[1]  # type: ignore[no-any-return]
        try:
            merged: ynodes.Node | smp.MergeFailed | None = keep(smp.merge(patch, res.node, schema))
        except smp.MergeFailed as exc:
            merged = exc
        shared[key] = (res.node, merged)
        if isinstance(merged, smp.MergeFailed):
            raise merged
        return merged

    def accumulate(self, kf: KustFile, acc: Accumulated, stack: tuple[str, ...]) -> None:
        """kustomize's `accumulateTarget` for one kustomization (or component) into `acc`."""
        self._check_files(kf, acc)
        if kf.root is None and kf.path:
            acc.unknown.append(Unknown(kf.path, "is not a mapping", (kf.path,)))
            return
        for name in kf.unsupported:
            acc.unknown.append(Unknown(kf.path, f"uses `{name}`", (kf.path,)))
        for entry in kf.resources:
            self._resource(kf, entry, acc, stack)
        for entry in kf.configurations:
            self._configuration(entry, acc)
        generators.run(self, kf, acc)
        for entry in kf.components:
            self._component(kf, entry, acc, stack)
        transformers.run(self, kf, acc)

    def _check_files(self, kf: KustFile, acc: Accumulated) -> None:
        if not kf.path:
            return
        found = self.view.kustomization_files(kf.directory)
        if len(found) > 1:
            names = " and ".join(posixpath.basename(p) for p in found)
            acc.problems.append(
                BuildProblem(
                    ProblemKind.MULTIPLE_FILES,
                    kf.path,
                    1,
                    f"{kf.directory or '.'} holds {names}: kustomize fails with `Found multiple "
                    "kustomization files`.",
                )
            )

    def _resource(
        self, kf: KustFile, entry: kustfile.Entry, acc: Accumulated, stack: tuple[str, ...]
    ) -> None:
        where = f"`{entry.value}` in {entry.file}"
        if _REMOTE.search(entry.value):
            acc.unknown.append(Unknown(where, "is remote", (entry.file,)))
            return
        if "${" in entry.value or "{{" in entry.value:
            acc.unknown.append(Unknown(where, "is a template", (entry.file,)))
            return
        target = _join(entry.directory, entry.value)
        if target is None:
            acc.unknown.append(Unknown(where, "is outside the source", (entry.file,)))
            return
        reader = Reader.KUSTOMIZATION_ENTRY if kf.path else Reader.FLUX_INDEX
        if self.view.is_file(target):
            real = self.view.real(target) or target
            if posixpath.basename(target) in KUSTOMIZATION_FILES:
                acc.unknown.append(
                    Unknown(where, "names a kustomization file as a resource", (entry.file,))
                )
                return
            acc.reads.append(Read(real, reader, kf.path, entry.line))
            for res in self.load_objects(target, acc, where):
                acc.resmap.append(res, acc.problems, where)
            return
        if self.view.is_dir(target):
            kpath = self.view.kustomization_in(target)
            if kpath is None:
                acc.unknown.append(
                    Unknown(where, "has no kustomization file", (entry.file, target), fails=True)
                )
                return
            if target in stack:
                acc.problems.append(
                    BuildProblem(
                        ProblemKind.CYCLE,
                        entry.file,
                        entry.line,
                        f"`{entry.value}` includes {target or '.'}, which is already being built "
                        "on the way here: kustomize fails with `cycle detected`.",
                    )
                )
                return
            sub_kf = self.read_kustfile(kpath)
            acc.reads.append(Read(self.view.real(kpath) or kpath, reader, kf.path, entry.line))
            if sub_kf is not None and sub_kf.is_component:
                acc.problems.append(
                    BuildProblem(
                        ProblemKind.ENTRY_KIND,
                        entry.file,
                        entry.line,
                        f"`{entry.value}` is a Component, listed under `resources`: kustomize "
                        "fails with `expected kind != 'Component'`; list it under `components`.",
                    )
                )
                return
            acc.absorb(self.build_dir(target, stack), where)
            return
        # A missing JSON file may be an export's gap (kustomize-missing-resource).
        missing = Unknown(
            where, "does not exist", (entry.file, target), fails=not _names_json(entry.value)
        )
        acc.unknown.append(missing)

    def _configuration(self, entry: kustfile.Entry, acc: Accumulated) -> None:
        where = f"configuration `{entry.value}` of {entry.file}"
        target = _join(entry.directory, entry.value)
        real = self.view.real(target) if target is not None else None
        if real is None or self.files.problem(real) is not None:
            acc.unknown.append(Unknown(where, "cannot be read", (entry.file,)))
            return
        acc.reads.append(Read(real, Reader.KUSTOMIZATION_ENTRY, entry.file, entry.line))
        docs = self.files.documents(real)
        acc.config.merge(fieldspecs.parse_config(yn.to_value(docs[0]) if docs else None))

    def _component(
        self, kf: KustFile, entry: kustfile.Entry, acc: Accumulated, stack: tuple[str, ...]
    ) -> None:
        where = f"component `{entry.value}` of {entry.file}"
        if _REMOTE.search(entry.value):
            acc.unknown.append(Unknown(where, "is remote", (entry.file,)))
            return
        target = _join(entry.directory, entry.value)
        kpath = (
            self.view.kustomization_in(target)
            if target is not None and self.view.is_dir(target)
            else None
        )
        if target is None or kpath is None:
            acc.unknown.append(
                Unknown(
                    where,
                    "has no kustomization file",
                    (entry.file,) + ((target,) if target else ()),
                )
            )
            return
        if target in stack:
            acc.problems.append(
                BuildProblem(
                    ProblemKind.CYCLE,
                    entry.file,
                    entry.line,
                    f"component `{entry.value}` includes {target or '.'}, which is already being "
                    "built on the way here: kustomize fails with `cycle detected`.",
                )
            )
            return
        ckf = self.read_kustfile(kpath)
        acc.reads.append(
            Read(self.view.real(kpath) or kpath, Reader.KUSTOMIZATION_ENTRY, kf.path, entry.line)
        )
        if ckf is None:
            real = self.view.real(kpath) or kpath
            acc.unknown.append(Unknown(real, "does not parse", (real,)))
            return
        if not ckf.is_component:
            acc.problems.append(
                BuildProblem(
                    ProblemKind.ENTRY_KIND,
                    entry.file,
                    entry.line,
                    f"`{entry.value}` is listed under `components` but its kustomization is not "
                    "`kind: Component`: kustomize fails with `expected kind 'Component'`.",
                )
            )
            return
        self.accumulate(ckf, acc, (*stack, target))

    def finish(self, directory: str, kfile: str | None, acc: Accumulated) -> Built:
        """kustomize's last steps at the top of a build: content hashes on generated
        names, then every reference to a renamed object updated."""
        resources = generators.add_hashes(list(acc.resmap))
        resources = nameref.fix(resources, acc.config)
        resources = [_without_build_annotations(r) for r in resources if not _local_config(r)]
        # Copies: `acc` may be a directory's build that other parents, and another
        # commit's builds, share.
        return Built(
            directory, kfile, resources, list(acc.unknown), list(acc.problems), list(acc.reads)
        )

    def build(self, directory: str, kf: KustFile | None = None) -> Built:
        """The top-level build of `directory`, from `kf` when given (a kustomization Flux
        has written into, or the index it generates)."""
        if kf is None:
            acc = self.build_dir(directory)
            kpath = self.view.kustomization_in(directory)
            return self.finish(directory, self.view.real(kpath) if kpath else None, acc)
        acc = Accumulated()
        self.accumulate(kf, acc, (directory,))
        return self.finish(directory, kf.path or None, acc)

    # --- helpers for the transformer and generator modules ---------------------------

    def patch_documents(
        self, entry: kustfile.PatchEntry, acc: Accumulated
    ) -> tuple[list[ynodes.Node], str] | None:
        """The documents of a patch (from its file, or its inline text) stamped with the
        file they are written in, and that file; None when they cannot be read (the
        build is then not fully known)."""
        if entry.path is not None:
            where = f"patch `{entry.path}` in {entry.file}"
            if _REMOTE.search(entry.path):
                acc.unknown.append(Unknown(where, "is remote", (entry.file,)))
                return None
            target = _join(entry.directory, entry.path)
            real = self.view.real(target) if target is not None else None
            if real is None:
                acc.unknown.append(
                    Unknown(
                        where,
                        "does not exist",
                        (entry.file,) + ((target,) if target else ()),
                        fails=True,
                    )
                )
                return None
            acc.reads.append(Read(real, Reader.KUSTOMIZATION_ENTRY, entry.file, entry.line))
            if self.files.problem(real) is not None:
                acc.unknown.append(Unknown(real, "does not parse", (real,)))
                return None
            return [yn.stamp(d, real) for d in self.files.documents(real)], real
        if entry.inline is None:
            return None
        node = entry.inline
        origin = node.start_mark
        file = origin.name if isinstance(origin, yn.Origin) else entry.file
        offset = int(origin.line) + (1 if node.style in ("|", ">") else 0)
        try:
            docs = [d for d in ys.compose_all(node.value) if d is not None]
        except (yaml.YAMLError, RecursionError):
            acc.unknown.append(
                Unknown(f"the patch at {file}:{offset + 1}", "does not parse", (file,))
            )
            return None
        if node.style not in ("|", ">"):
            # A quoted or plain patch: its lines cannot be mapped; the key's line is used.
            return [_flatten_marks(d, file, int(origin.line) + 1) for d in docs], file
        return [yn.stamp(d, file, offset) for d in docs], file


# Annotations kustomize removes from what it outputs (`RemoveBuildAnnotations`), also
# when a user wrote them.
_BUILD_ANNOTATIONS = frozenset(
    {"config.kubernetes.io/path", "config.kubernetes.io/index", "config.k8s.io/id"}
)


def _without_build_annotations(res: Resource) -> Resource:
    annotations = yn.get(res.node, "metadata", "annotations")
    if not isinstance(annotations, ynodes.MappingNode):
        return res
    keep = [
        (k, v)
        for k, v in annotations.value
        if not (
            isinstance(k, ynodes.ScalarNode)
            and (
                k.value in _BUILD_ANNOTATIONS
                or k.value.startswith("internal.config.kubernetes.io/")
            )
        )
    ]
    if len(keep) == len(annotations.value):
        return _annotations_as_strings(res)
    new_value = (
        ynodes.MappingNode(
            annotations.tag,
            keep,
            annotations.start_mark,
            annotations.end_mark,
            annotations.flow_style,
        )
        if keep
        else None
    )
    node = yn.update(res.node, ("metadata", "annotations"), lambda _: new_value, create=False)
    assert isinstance(node, ynodes.MappingNode)
    return _annotations_as_strings(
        Resource(
            node,
            res.path,
            res.line,
            res.doc,
            res.api_version,
            res.kind,
            res.name,
            res.namespace,
            res.generator,
            res.hashed,
            res.prev,
        )
    )


def _annotations_as_strings(res: Resource) -> Resource:
    """kustomize sets every object's annotations anew when it reads the object and when
    it writes it out (kyaml's `SetAnnotations`): each value becomes the string of its
    text (`1` is "1", `~` is "~"), and annotations that are null or empty disappear. A
    replacement that creates an annotation from a number writes a string."""
    annotations = yn.get(res.node, "metadata", "annotations")
    if annotations is None:
        return res
    new_value: ynodes.Node | None = None
    if isinstance(annotations, ynodes.MappingNode) and annotations.value:
        pairs = []
        for k, v in annotations.value:
            if isinstance(v, ynodes.ScalarNode) and type(yn.to_value(v)) is str:
                pairs.append((k, v))
            elif isinstance(v, ynodes.ScalarNode):
                pairs.append((k, yn.scalar(str(v.value), v.start_mark, yn.STR, '"')))
            else:
                pairs.append((k, yn.scalar("", v.start_mark, yn.STR, '"')))
        if all(a is b for (_, a), (_, b) in zip(pairs, annotations.value, strict=True)):
            return res
        new_value = ynodes.MappingNode(
            annotations.tag,
            pairs,
            annotations.start_mark,
            annotations.end_mark,
            annotations.flow_style,
        )
    elif isinstance(annotations, ynodes.ScalarNode) and yn.text(annotations) is not None:
        return res  # not a mapping: kustomize refuses the object; not this function's
    node = yn.update(res.node, ("metadata", "annotations"), lambda _: new_value, create=False)
    assert isinstance(node, ynodes.MappingNode)
    return res.with_node(node, store=False)


def _local_config(res: Resource) -> bool:
    """kustomize drops objects annotated `config.kubernetes.io/local-config` (any value
    but "false") at the very end (`IgnoreLocal`): they served the build only."""
    value = yn.text(
        yn.get(res.node, "metadata", "annotations", "config.kubernetes.io/local-config")
    )
    return value is not None and value != "false"


def _flatten_marks(node: ynodes.Node, path: str, line: int) -> ynodes.Node:
    stamped = yn.stamp(node, path)
    for _, n in yn.walk(stamped):
        n.start_mark = n.end_mark = yn.Origin(path, line)
    return stamped


def _identified(doc: ynodes.MappingNode) -> bool:
    return bool(
        yn.text(yn.get(doc, "apiVersion"))
        and yn.text(yn.get(doc, "kind"))
        and yn.text(yn.get(doc, "metadata", "name"))
    )


def _join(directory: str, rel: str) -> str | None:
    """`rel` against `directory` inside the artifact; None when it leaves it (kustomize-
    controller builds with `LoadRestrictionsNone` but within the artifact root)."""
    if rel.startswith("/"):
        return None
    joined = (
        posixpath.normpath(posixpath.join(directory, rel)) if directory else posixpath.normpath(rel)
    )
    if joined == ".":
        return ""
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


def generated_index(view: View, directory: str) -> KustFile:
    """The kustomization Flux generates for a `spec.path` without one
    (`fluxcd/pkg/kustomize` `findOrGenerateKustomization`): every `.yaml`/`.yml` file below
    it, a subdirectory with its own kustomization file as one resource, not entered."""
    kf = KustFile("", directory, None)
    stack = [directory]
    while stack:
        current = stack.pop()
        for path in view.files_in(current):
            if path.endswith((".yaml", ".yml")):
                kf.resources.append(
                    kustfile.Entry(
                        posixpath.relpath(path, directory) if directory else path, 1, "", directory
                    )
                )
        for sub in reversed(view.subdirs(current)):
            if view.kustomization_in(sub) is not None:
                kf.resources.append(
                    kustfile.Entry(
                        posixpath.relpath(sub, directory) if directory else sub, 1, "", directory
                    )
                )
            else:
                stack.append(sub)
    kf.resources.sort(key=lambda e: e.value)
    return kf


def flatten(builds: Iterable[Built]) -> list[Resource]:
    return [r for b in builds for r in b.resources]


__all__ = ["Accumulated", "Built", "Kustomizer", "Read", "generated_index", "secure_join"]


def _names_json(value: str) -> bool:
    return value.lower().endswith(".json")
