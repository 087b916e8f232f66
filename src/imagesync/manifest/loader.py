"""Turn a manifest directory into the desired model, collecting every problem with its location.

Reads `imagesync.yaml` and every `*.yaml`/`*.yml` below the root (documents that a manifest names
in `documentFile` are read as documents, not manifests), substitutes `${target.*}`, `${vars.*}`
and allowed `${env.*}` per target, validates each manifest against its kind's JSON Schema,
reads and checks component and workflow documents, resolves `{ref: NAME}` references and
refuses duplicates and cycles. Called by `imagesync.api`; prints nothing.
"""

from __future__ import annotations

import graphlib
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pathspec

from imagesync.desired import Address, DesiredState, DocumentObject, Project, Reference, Resource, Target
from imagesync.errors import Location
from imagesync.kinds import REGISTRY, arn_name, freeze
from imagesync.manifest import awstoe, rules, s3docs, yamlloc
from imagesync.manifest.explain import explain
from imagesync.manifest.problems import Problems, did_you_mean
from imagesync.manifest.schemas import KIND_FILES, validator
from imagesync.manifest.yamlloc import Located, NotRegularFile, check_regular, load_file, load_text, read_regular
from imagesync.plan_model import dotted, is_under, parse_path

API_VERSION = "imagesync/v1"
PROJECT_FILE = "imagesync.yaml"
MAX_FILES = 5000
# gitignore-syntax patterns of YAML files that are not manifests, at the manifest root.
IGNORE_FILE = ".imagesyncignore"
MAX_IGNORE_BYTES = 64 * 1024
PLACEHOLDER = re.compile(r"\$\{(target|vars|env)\.([A-Za-z0-9_-]+)\}")


@dataclass
class _Manifest:
    doc: Located
    kind: str
    name: str


def load(root: str | os.PathLike[str], *, region: str | None = None) -> DesiredState:
    """Load and check the manifests under `root`; raise `ManifestError` listing every problem.

    `region` (the `--region` flag) replaces every target's region before anything is resolved,
    so `${target.region}` and the ARNs imagesync computes follow it.
    """
    problems = Problems()
    state = _Loader(Path(root), problems, region).run()
    problems.raise_if_any()
    assert state is not None
    return state


def load_project(root: str | os.PathLike[str], *, region: str | None = None) -> Project | None:
    """The project file alone (its name and targets), or None when it has any problem: `load`
    reports those. Cheap, so reading live state can start while the manifests load."""
    problems = Problems()
    loader = _Loader(Path(root), problems, region)
    if not loader.root.is_dir():
        return None
    loader.real_root = loader.root.resolve()
    project = loader._project()
    return None if problems else project


class _Loader:
    def __init__(self, root: Path, problems: Problems, region: str | None = None) -> None:
        self.region = region
        self.root = root
        self.problems = problems
        self.hash = hashlib.sha256()
        # (target, kind, name) of manifests that failed their schema: references to them are not
        # reported again as "not defined".
        self.invalid: set[tuple[str, str, str]] = set()
        # Text of manifest files that did not parse completely, and names of manifests refused
        # before their kind was known: a reference that may point into them is not reported.
        self.unparsed: list[str] = []
        self.unnamed: set[str] = set()
        self.irregular: list[tuple[Path, str]] = []
        # Which YAML files are manifests: .imagesyncignore and imagesync.yaml's exclude leave files
        # out, its include (when given) lets only matching ones in. Read by _read_filters.
        self._project_doc: Located | None = None
        self._ignored = pathspec.GitIgnoreSpec.from_lines([])
        self._included: pathspec.GitIgnoreSpec | None = None

    # --- files ----------------------------------------------------------------------------------

    def run(self) -> DesiredState | None:
        if not self.root.is_dir():
            self.problems.add(Location(str(self.root)), "is not a directory")
            return None
        self.real_root = self.root.resolve()
        project = self._project()
        self._read_filters()
        manifests: list[_Manifest] = []
        documents_named: set[Path] = set()
        candidates = list(self._yaml_files())
        # Parse every file once; problems are kept per file so that document files named by a
        # manifest (read again as documents later) do not report manifest errors.
        parsed: dict[Path, tuple[list[Located], Problems]] = {}
        for path in candidates:
            found = Problems()
            parsed[path] = (load_file(str(path), self._display(path), found), found)
        for path, (docs, _) in parsed.items():
            for doc in docs:
                spec = doc.value.get("spec") if isinstance(doc.value, dict) and "apiVersion" in doc.value else None
                for key in SUPPLIED_BY:
                    ref = spec.get(key) if isinstance(spec, dict) else None
                    for name in self._per_target(project, ref) if isinstance(ref, str) else ():
                        real = _resolved(path.parent / name)
                        if real is not None:
                            documents_named.add(real)
        for path, what in self.irregular:
            if _resolved(path) not in documents_named:
                self.problems.add(
                    Location(self._display(path)), f"is not a regular file ({what}); manifests must be regular files"
                )
        for path, (_docs, found) in parsed.items():
            if found and _resolved(path) not in documents_named:
                self._remember_unparsed(path)
        for path in candidates:
            docs, _ = parsed[path]
            holds_manifests = any(isinstance(d.value, dict) and "apiVersion" in d.value for d in docs)
            if _resolved(path) in documents_named and not holds_manifests:
                continue  # a component/workflow document: read when its manifest is
            if not holds_manifests and not parsed[path][1] and self._maybe_unparsed(path.name):
                continue  # likely the document of a manifest that could not be read
            self._hash_file(path)
            docs, found = parsed[path]
            self.problems.items.extend(found.items)
            for doc in docs:
                manifest = self._envelope(doc)
                if manifest is not None:
                    manifests.append(manifest)
        if project is None:
            return None
        resources = self._resources(project, manifests)
        self._arn_names(resources)
        self._references(project, resources)
        self._cycles(project, resources)
        rules.check(resources, [m.doc for m in manifests], self.problems)
        return DesiredState(
            project=project,
            resources=MappingProxyType(resources),
            root=str(self.real_root),
            digest=self.hash.hexdigest(),
            warnings=tuple(sorted(set(self.problems.warnings))),
        )

    def _per_target(self, project: Project | None, text: str) -> set[str]:
        """`text` as each target would read it (document paths may use placeholders)."""
        if "${" not in text or project is None:
            return {text}
        names = set()
        for target in project.targets:

            def replace(match: re.Match[str], target: Target = target) -> str:
                found = _lookup(project, target, match.group(1), match.group(2))
                return found if isinstance(found, str) else match.group(0)

            names.add(PLACEHOLDER.sub(replace, text))
        return names

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def _read_filters(self) -> None:
        """The patterns that decide which YAML files are manifests, each checked where it is written."""
        patterns: list[str] = []
        path = self.root / IGNORE_FILE
        if os.path.lexists(path):
            text = self._ignore_file(path)
            for n, line in enumerate((text or "").splitlines(), 1):
                if self._pattern_ok(line, Location(IGNORE_FILE, n, 1)):
                    patterns.append(line)
        doc = self._project_doc
        value = doc.value if doc is not None else {}
        for i, pattern in enumerate(value.get("exclude") or []):
            if doc is not None and self._pattern_ok(pattern, doc.at(("exclude", i))):
                patterns.append(pattern)
        self._ignored = pathspec.GitIgnoreSpec.from_lines(patterns)
        include = value.get("include")
        if include and doc is not None:
            kept = [p for i, p in enumerate(include) if self._pattern_ok(p, doc.at(("include", i)))]
            self._included = pathspec.GitIgnoreSpec.from_lines(kept)

    def _ignore_file(self, path: Path) -> str | None:
        if not self._inside(path):  # never read outside the paths the user gave
            self.problems.add(Location(IGNORE_FILE), "is a link that points outside the manifest root")
            return None
        try:
            raw = read_regular(path, MAX_IGNORE_BYTES + 1)
        except NotRegularFile as exc:
            self.problems.add(Location(IGNORE_FILE), f"is not a regular file ({exc.what})")
            return None
        except OSError as exc:
            self.problems.add(Location(IGNORE_FILE), f"cannot be read: {exc.strerror or exc}")
            return None
        if len(raw) > MAX_IGNORE_BYTES:
            self.problems.add(Location(IGNORE_FILE), f"is larger than {MAX_IGNORE_BYTES // 1024} KiB")
            return None
        self._hash_bytes(path, raw)  # it decides what the plan reads: part of the manifests' digest
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.problems.add(Location(IGNORE_FILE), "is not UTF-8 text")
            return None

    def _pattern_ok(self, pattern: str, where: Location) -> bool:
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern])
        except ValueError as exc:
            self.problems.add(where, f"{pattern!r} is not a gitignore pattern: {exc}")
            return False
        return True

    def _manifest_file(self, relative: str) -> bool:
        """Is the YAML file at `relative` (POSIX, from the root) one to read as manifests?"""
        if self._ignored.match_file(relative):
            return False
        return self._included is None or self._included.match_file(relative)

    def _yaml_files(self) -> Iterator[Path]:
        count = 0
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            here = Path(dirpath).relative_to(self.root).as_posix()
            prefix = "" if here == "." else f"{here}/"
            # An ignored directory is not walked (as in git, nothing under it can be re-included).
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and not self._ignored.match_file(f"{prefix}{d}/")
            )
            for filename in sorted(filenames):
                if not filename.endswith((".yaml", ".yml")) or filename == PROJECT_FILE and Path(dirpath) == self.root:
                    continue
                if not self._manifest_file(f"{prefix}{filename}"):
                    continue
                path = Path(dirpath) / filename
                if not self._inside(path):
                    self.problems.add(Location(self._display(path)), "is a link that points outside the manifest root")
                    continue
                try:
                    check_regular(path)
                except NotRegularFile as exc:
                    # Never opened: a FIFO would block the read forever. Reported by run(), unless
                    # a manifest names it as a document, whose field is then the place to report.
                    self.irregular.append((path, exc.what))
                    continue
                except OSError:
                    pass  # load_file reports unreadable files
                count += 1
                if count > MAX_FILES:
                    self.problems.add(Location(str(self.root)), f"holds more than {MAX_FILES} YAML files")
                    return
                yield path

    def _inside(self, path: Path) -> bool:
        real = _resolved(path)
        if real is None:
            return False
        return real == self.real_root or self.real_root in real.parents

    def _hash_file(self, path: Path) -> None:
        try:
            self._hash_bytes(path, path.read_bytes())
        except OSError:
            pass  # load_file reports unreadable files

    def _hash_bytes(self, path: Path, raw: bytes) -> None:
        """Add one file to the manifest digest, named relative to the real manifest root, so the
        digest is the same whether the root was given relative, absolute or from another clone."""
        real = _resolved(path) or path
        try:
            name = real.relative_to(self.real_root).as_posix()
        except ValueError:
            name = real.as_posix()
        self.hash.update(name.encode() + b"\0" + raw + b"\0")

    # --- imagesync.yaml ------------------------------------------------------------------------

    def _project(self) -> Project | None:
        path = self.root / PROJECT_FILE
        if not path.is_file():
            self.problems.add(
                Location(PROJECT_FILE), f"no {PROJECT_FILE} in {self.root}: it names the project and its targets"
            )
            return None
        self._hash_file(path)
        docs = load_file(str(path), PROJECT_FILE, self.problems)
        if len(docs) != 1:
            if docs:
                self.problems.add(docs[1].at(), f"{PROJECT_FILE} must hold exactly one YAML document")
            elif not self.problems:
                self.problems.add(Location(PROJECT_FILE, 1, 1), f"{PROJECT_FILE} is empty")
            return None
        doc = docs[0]
        if not self._schema(doc, "imagesync", ""):
            return None
        self._project_doc = doc
        value = doc.value
        self._lock_path(doc)  # reported, but the manifests are still checked
        targets: list[Target] = []
        seen: set[str] = set()
        for i, t in enumerate(value["targets"]):
            if t["name"] in seen:
                self.problems.add(doc.at(("targets", i, "name")), f"target '{t['name']}' is defined twice")
                continue
            seen.add(t["name"])
            account = t.get("account")
            if account is None and t.get("roleArn"):
                account = t["roleArn"].split(":")[4]
            targets.append(
                Target(
                    t["name"],
                    self.region or t["region"],
                    account,
                    t.get("roleArn"),
                    MappingProxyType(dict(t.get("vars") or {})),
                )
            )
        return Project(
            name=value["project"],
            targets=tuple(targets),
            lock=freeze(value.get("lock") or {"backend": "file"}),
            defaults=freeze(value.get("defaults") or {}),
            allow_env=tuple(value.get("allowEnv") or ()),
        )

    # --- manifests ----------------------------------------------------------------------------

    def _envelope(self, doc: Located) -> _Manifest | None:
        value = doc.value
        if not isinstance(value, dict):
            self.problems.add(doc.at(), "a manifest must be a mapping with apiVersion, kind, metadata and spec")
            return None
        if value.get("apiVersion") != API_VERSION:
            where = ("apiVersion",) if "apiVersion" in value else ()
            self.problems.add(
                doc.at(where),
                f"apiVersion must be '{API_VERSION}', got {value.get('apiVersion')!r}"
                if "apiVersion" in value
                else f"not an imagesync manifest: no 'apiVersion: {API_VERSION}' (if the file is not meant to be "
                f"one, list it in {IGNORE_FILE} or under exclude in {PROJECT_FILE})",
            )
            return None
        kind = value.get("kind")
        if not isinstance(kind, str) or kind not in REGISTRY:
            metadata = value.get("metadata")
            if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
                self.unnamed.add(metadata["name"])
            hint = did_you_mean(kind, REGISTRY.names())
            self.problems.add(
                doc.at(("kind",)),
                f"unknown kind {kind!r}{hint}" + ("" if hint else f"; expected one of: {', '.join(REGISTRY.names())}"),
            )
            return None
        metadata = value.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str):
            self.problems.add(doc.at(("metadata",)), "metadata.name is required and must be a string")
            return None
        if "${env." in name:
            self.problems.add(
                doc.at(("metadata", "name")),
                "metadata.name may use ${target.*} and ${vars.*}, not ${env.*}: a resource's identity must not "
                "depend on where imagesync runs",
            )
            return None
        return _Manifest(doc, kind, name)

    def _resources(self, project: Project, manifests: list[_Manifest]) -> dict[tuple[str, str, str], Resource]:
        resources: dict[tuple[str, str, str], Resource] = {}
        known_targets = {t.name for t in project.targets}
        for m in manifests:
            wanted = m.doc.value.get("metadata", {}).get("targets")
            if isinstance(wanted, list):
                for i, t in enumerate(wanted):
                    if not isinstance(t, str):
                        self.problems.add(
                            m.doc.at(("metadata", "targets", i)),
                            f"metadata.targets[{i}]: {t!r} is not of type 'string'; list target names",
                        )
                    elif t not in known_targets:
                        hint = did_you_mean(t, known_targets)
                        self.problems.add(
                            m.doc.at(("metadata", "targets", i)),
                            f"unknown target {t!r}{hint}"
                            + ("" if hint else f"; {PROJECT_FILE} defines: {', '.join(sorted(known_targets))}"),
                        )
                targets = [t for t in project.targets if t.name in [w for w in wanted if isinstance(w, str)]]
            else:
                targets = list(project.targets)
            for target in targets:
                resource = self._resource(project, target, m)
                if resource is None:
                    continue
                key = (target.name, m.kind, resource.name)
                if key in resources:
                    first = resources[key].location
                    self.problems.add(
                        resource.location,
                        f"{m.kind} '{resource.name}' is defined twice for target {target.name} (first at {first})",
                    )
                    continue
                resources[key] = resource
        return resources

    def _resource(self, project: Project, target: Target, m: _Manifest) -> Resource | None:
        value = self._substitute(project, target, m.doc, m.doc.value, ())
        doc = Located(value, m.doc.file, m.doc.marks)
        # The name may use ${target.*} and ${vars.*}: identity is the name after substitution.
        name = value["metadata"]["name"] if isinstance(value["metadata"].get("name"), str) else m.name
        if not self._schema(doc, KIND_FILES[m.kind], m.kind):
            self.invalid.add((target.name, m.kind, name))
            return None
        spec = value["spec"]
        self._sensitive_paths(doc)
        upload = self._upload_settings(project, target, doc, m.kind)
        document, parsed = self._document(project, target, m, doc, upload)
        return Resource(
            target=target.name,
            kind=m.kind,
            name=name,
            spec=freeze(spec),
            location=doc.at(("metadata", "name")),
            annotations=freeze(value["metadata"].get("annotations") or {}),
            references=tuple(self._collect_refs(doc, m.kind, target.name)),
            document=document,
            document_value=freeze(parsed),
            document_object=self._document_object(doc, m.kind, name, document, upload),
        )

    def _substitute(self, project: Project, target: Target, doc: Located, value: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key = self._expand(project, target, k, _at_key(doc, path, k)) if "${" in k else k
                out[key] = self._substitute(project, target, doc, v, (*path, k))
            return out
        if isinstance(value, list):
            return [self._substitute(project, target, doc, v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return self._expand(project, target, value, lambda _offset: doc.at(path))
        return value

    def _expand(self, project: Project, target: Target, text: str, where: Callable[[int], Location]) -> str:
        """Replace imagesync placeholders; any other `${...}` (shell variables) stays as written."""

        def replace(match: re.Match[str]) -> str:
            namespace, key = match.group(1), match.group(2)
            found = _lookup(project, target, namespace, key)
            if isinstance(found, str):
                return found
            self.problems.add(where(match.start()), found.message)
            return match.group(0)

        return PLACEHOLDER.sub(replace, text)

    def _schema(self, doc: Located, schema: str, kind: str) -> bool:
        errors = sorted(validator(schema).iter_errors(doc.value), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            secret = _sensitive(doc.value)

            def sensitive(where: str) -> bool:
                # Under a sensitive path, or holding one (a map or list that contains the value).
                return any(is_under(where, s) or is_under(s, where) for s in secret)

            for error in errors:
                path, message = explain(error, sensitive)
                self.problems.add(doc.at(path), message)
        return not errors

    # --- documents ----------------------------------------------------------------------------

    def _document(
        self, project: Project, target: Target, m: _Manifest, doc: Located, upload: s3docs.Upload | None = None
    ) -> tuple[str | None, Any]:
        """The kind's document as sent (text) and, for YAML documents, as parsed: read and checked
        once here, so nothing downstream parses it again."""
        kind = REGISTRY[m.kind].document
        spec = doc.value["spec"]
        if kind is None:
            return None, None
        if kind.inline_field in spec:
            where = doc.at(("spec", kind.inline_field))
            if not kind.parsed:
                awstoe.check_inline_size(spec[kind.inline_field], where, self.problems)
                return str(spec[kind.inline_field]), None
            located = doc.sub(("spec", kind.inline_field))
            located.value = spec[kind.inline_field]
            _CHECKS[kind.language](located, self.problems)
            dumped = yamlloc.dump(spec[kind.inline_field])
            s3docs.check_size(dumped, where, self.problems, upload)
            return dumped, spec[kind.inline_field]
        if kind.file_field not in spec:
            return None, None  # the service reads it from `uri_member`
        text, display = self._read_relative(project, target, m, doc, ("spec", kind.file_field))
        if text is None:
            return None, None
        where = doc.at(("spec", kind.file_field))
        if not kind.parsed:
            awstoe.check_inline_size(text, where, self.problems)
            return text, None
        before = len(self.problems.items)
        parsed = load_text(text, display, self.problems)
        if len(parsed) != 1:
            if parsed:
                self.problems.add(parsed[1].at(), "a document file must hold exactly one YAML document")
            elif len(self.problems.items) == before:  # not after a YAML error: that is the cause
                self.problems.add(Location(display, 1, 1), "the document file is empty")
            return None, None
        _CHECKS[kind.language](parsed[0], self.problems)
        s3docs.check_size(text, where, self.problems, upload)
        # Within the limits just checked; read as the content hash has always read a file.
        return text, awstoe.as_sent(text)

    def _upload_settings(self, project: Project, target: Target, doc: Located, kind: str) -> s3docs.Upload | None:
        """Where this resource's document goes if it is over the inline limit: its own
        `documentUpload`, else `defaults.documentBucket` (placeholders substituted for the target)."""
        declared = REGISTRY[kind].document
        spec = doc.value["spec"]
        if declared is None or not declared.parsed:
            return None
        if "documentUpload" in spec:
            if declared.uri_member in spec:
                self.problems.add(
                    doc.at(("spec", "documentUpload")),
                    f"documentUpload uploads a document or {declared.file_field}; this {kind}'s document is "
                    f"already in S3 at '{declared.uri_member}': remove one of them",
                )
                return None
            given = spec["documentUpload"]
            bucket, prefix = given.get("bucket"), given.get("prefix", s3docs.DEFAULT_PREFIX)
            where = doc.at(("spec", "documentUpload"))
        else:
            defaults = project.defaults.get("documentBucket")
            if not defaults or self._project_doc is None:
                return None
            at = self._project_doc.at(("defaults", "documentBucket"))
            bucket = self._expand(project, target, str(defaults.get("bucket", "")), lambda _offset: at)
            prefix = self._expand(project, target, str(defaults.get("prefix", s3docs.DEFAULT_PREFIX)), lambda _o: at)
            where = at
        if not s3docs.check_settings(bucket, prefix, where, self.problems):
            return None
        return s3docs.Upload(bucket, prefix)

    def _document_object(
        self, doc: Located, kind: str, name: str, document: str | None, upload: s3docs.Upload | None
    ) -> DocumentObject | None:
        """The S3 object behind the document: the one `uri` names, or the upload a large one needs."""
        declared = REGISTRY[kind].document
        spec = doc.value["spec"]
        if declared is None or not declared.parsed:
            return None
        if declared.uri_member in spec:
            uri = spec[declared.uri_member]
            where = doc.at(("spec", declared.uri_member))
            parsed = s3docs.parse_uri(uri) if isinstance(uri, str) else None
            if parsed is None:
                self.problems.add(
                    where, f"{declared.uri_member} {uri!r} is not an S3 URL; Image Builder reads s3://BUCKET/KEY"
                )
                return None
            return DocumentObject(parsed[0], parsed[1], where, upload=False)
        if document is None or upload is None or len(document) <= awstoe.INLINE_LIMIT:
            return None
        field = declared.inline_field if declared.inline_field in spec else declared.file_field
        return DocumentObject(upload.bucket, upload.key(name, document), doc.at(("spec", field)), upload=True)

    def _read_relative(
        self, project: Project, target: Target, m: _Manifest, doc: Located, path: tuple[str, ...]
    ) -> tuple[str | None, str]:
        relative = doc.value["spec"][path[-1]]
        location = doc.at(path)
        manifest_dir = (self.root / m.doc.file).parent
        candidate = manifest_dir / relative
        display = self._display(candidate) if not os.path.isabs(relative) else relative
        if os.path.isabs(relative) or not self._inside(candidate):
            self.problems.add(
                location, f"{path[-1]} '{relative}' escapes the manifest root; documents must live inside it"
            )
            return None, display
        display = self._display(candidate.resolve()) if candidate.exists() else os.path.normpath(display)
        try:
            raw = read_regular(candidate, 4 * 1024 * 1024 + 1)
        except NotRegularFile as exc:
            self.problems.add(
                location, f"{path[-1]} '{relative}' is not a regular file ({exc.what}); documents must be regular files"
            )
            return None, display
        except FileNotFoundError:
            self.problems.add(location, f"{path[-1]} '{relative}' does not exist (looked for {display})")
            return None, display
        except OSError as exc:
            self.problems.add(location, f"{path[-1]} '{relative}' cannot be read: {exc.strerror or exc}")
            return None, display
        if len(raw) > 4 * 1024 * 1024:
            self.problems.add(location, f"{path[-1]} '{relative}' is larger than 4 MiB")
            return None, display
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.problems.add(location, f"{path[-1]} '{relative}' is not UTF-8 text")
            return None, display
        self._hash_bytes(candidate, raw)

        def where(offset: int) -> Location:
            line = text.count("\n", 0, offset) + 1
            column = offset - (text.rfind("\n", 0, offset) + 1) + 1
            return Location(display, line, column)

        return self._expand(project, target, text, where), display

    # --- checks of identity, lock path and sensitive paths --------------------------------------

    def _lock_path(self, doc: Located) -> bool:
        """`lock.path`, when given, must stay inside the manifest root (absolute and `..` do not)."""
        lock = doc.value.get("lock")
        relative = lock.get("path") if isinstance(lock, dict) else None
        if not isinstance(relative, str):
            return True
        inside = not os.path.isabs(relative) and ".." not in Path(os.path.normpath(relative)).parts
        if inside:
            real = _resolved(self.root / relative)
            inside = real is not None and (real == self.real_root or self.real_root in real.parents)
        if not inside:
            self.problems.add(
                doc.at(("lock", "path")),
                f"lock.path '{relative}' is outside the manifest root; give a directory inside it, "
                "or leave lock.path out to keep locks in the per-user state directory",
            )
        return inside

    def _arn_names(self, resources: dict[tuple[str, str, str], Resource]) -> None:
        """Image Builder folds case, `_` and spaces in ARNs: two such names are one resource."""
        first: dict[tuple[str, str, str], Resource] = {}
        reported: set[tuple[str, str]] = set()
        for (target, kind, name), resource in sorted(resources.items(), key=lambda kv: kv[1].location):
            key = (target, kind, arn_name(name))
            other = first.setdefault(key, resource)
            if other is resource or (str(other.location), str(resource.location)) in reported:
                continue
            reported.add((str(other.location), str(resource.location)))
            self.problems.add(
                resource.location,
                f"{kind} '{name}' and '{other.name}' ({other.location}) have the same ARN name '{key[2]}'; "
                "Image Builder would treat them as one resource",
            )

    def _sensitive_paths(self, doc: Located) -> None:
        """Every `spec.sensitive` entry must name a field that this spec has."""
        spec = doc.value["spec"]
        for i, entry in enumerate(spec.get("sensitive") or ()):
            where = doc.at(("spec", "sensitive", i))
            try:
                segments = parse_path(entry)
            except ValueError:
                segments = ()
            if not segments or any(isinstance(s, str) and not s.strip() for s in segments):
                self.problems.add(
                    where,
                    f"spec.sensitive[{i}]: '{entry}' is not a field path; write it relative to spec, "
                    "e.g. 'userDataOverride' or 'components[0].parameters[1].value'",
                )
                continue
            node: Any = {**spec, **_file_contents(spec)}
            for depth, segment in enumerate(segments):
                if isinstance(node, dict) and isinstance(segment, str) and segment in node:
                    node = node[segment]
                    continue
                if isinstance(node, list) and isinstance(segment, int) and segment < len(node):
                    node = node[segment]
                    continue
                message = f"spec.sensitive[{i}]: '{entry}' is not a field of this spec"
                parent = dotted(("spec", *segments[:depth]))
                if isinstance(node, list):
                    message += f": {parent} has {len(node)} item{'' if len(node) == 1 else 's'}"
                elif isinstance(node, dict) and depth == 0 and segment == "spec" and len(segments) > 1:
                    message += f"; did you mean '{entry[len('spec.'):]}'? (paths are relative to spec)"
                elif isinstance(node, dict):
                    message += did_you_mean(segment, [k for k in node if k != "sensitive"])
                else:
                    message += f": {parent} holds a single value"
                self.problems.add(where, message)
                break

    def _remember_unparsed(self, path: Path) -> None:
        try:
            self.unparsed.append(read_regular(path, 4 * 1024 * 1024).decode("utf-8", "replace"))
        except OSError:
            pass

    def _maybe_unparsed(self, name: str) -> bool:
        """True when `name` may be defined in a manifest that could not be read: not a new problem."""
        if name in self.unnamed:
            return True
        word = re.compile(r"(?<![A-Za-z0-9_.-])" + re.escape(name) + r"(?![A-Za-z0-9_-])")
        return any(word.search(text) for text in self.unparsed)

    # --- references and cycles -----------------------------------------------------------------

    def _collect_refs(self, doc: Located, kind: str, own_target: str) -> Iterator[Reference]:
        spec = doc.value["spec"]
        for field in REGISTRY[kind].refs:
            pins = {path: version for path, _name, version in field.pins(spec)}
            targets = dict(field.targets(spec))
            for path, name in field.find(spec):
                in_target = targets.get(path)
                yield Reference(
                    path=path,
                    target=Address(field.kind_for(spec), name),
                    form=field.form,
                    location=doc.at(("spec", *path)),
                    version=pins.get(path),
                    in_target=None if in_target == own_target else in_target,
                )

    def _references(self, project: Project, resources: dict[tuple[str, str, str], Resource]) -> None:
        for resource in resources.values():
            for ref in resource.references:
                if ref.in_target is not None:
                    self._cross_target(project, resources, resource, ref)
                    continue
                key = (resource.target, ref.target.kind, ref.target.name)
                if key in resources or key in self.invalid or self._maybe_unparsed(ref.target.name):
                    continue
                field = dotted(ref.path)
                same_name = [r for (t, _k, n), r in resources.items() if t == resource.target and n == ref.target.name]
                elsewhere = [r for (t, k, n), r in resources.items() if k == ref.target.kind and n == ref.target.name]
                if same_name:
                    other = same_name[0]
                    message = (
                        f"{resource.address} spec.{field} references '{ref.target.name}', which is a "
                        f"{other.kind} (defined at {other.location}), not a {ref.target.kind}"
                    )
                elif elsewhere:
                    message = (
                        f"{resource.address} spec.{field} references {ref.target}, which is not defined for "
                        f"target {resource.target} (it is defined at {elsewhere[0].location} for other targets)"
                    )
                else:
                    names = {n for (t, k, n) in resources if t == resource.target and k == ref.target.kind}
                    message = (
                        f"{resource.address} spec.{field} references {ref.target}, which is not defined"
                        + did_you_mean(ref.target.name, names)
                    )
                self.problems.add(ref.location, message)

    def _cross_target(
        self, project: Project, resources: dict[tuple[str, str, str], Resource], resource: Resource, ref: Reference
    ) -> None:
        """`{ref: NAME, target: T}`: T must be a target, manage NAME, and NAME's kind be shareable."""
        field = dotted(ref.path)
        names = [t.name for t in project.targets]
        assert ref.in_target is not None
        if ref.in_target not in names:
            hint = did_you_mean(ref.in_target, set(names))
            self.problems.add(
                ref.location,
                f"{resource.address} spec.{field} names target '{ref.in_target}', which {PROJECT_FILE} does not "
                f"define{hint or '; it defines: ' + ', '.join(names)}",
            )
            return
        kind = REGISTRY[ref.target.kind]
        if kind.sharing is None:
            shareable = ", ".join(k.name for k in REGISTRY if k.sharing is not None)
            self.problems.add(
                ref.location,
                f"{resource.address} spec.{field} references a {kind.name} in target '{ref.in_target}', but "
                f"{kind.name}s cannot be shared between accounts (shareable: {shareable}); define it in "
                f"target {resource.target} too",
            )
            return
        key = (ref.in_target, ref.target.kind, ref.target.name)
        if key in resources or key in self.invalid or self._maybe_unparsed(ref.target.name):
            return
        there = {n for (t, k, n) in resources if t == ref.in_target and k == ref.target.kind}
        self.problems.add(
            ref.location,
            f"{resource.address} spec.{field} references {ref.target} in target '{ref.in_target}', which is not "
            f"defined for that target" + did_you_mean(ref.target.name, there),
        )

    def _target_cycles(self, project: Project, resources: dict[tuple[str, str, str], Resource]) -> None:
        """Targets apply one after another, each after those it uses: they may not use each other."""
        edges: dict[str, set[str]] = {t.name: set() for t in project.targets}
        where: dict[tuple[str, str], Location] = {}
        for resource in resources.values():
            for ref in resource.references:
                if ref.in_target in edges:
                    edges[resource.target].add(ref.in_target)
                    where.setdefault((resource.target, ref.in_target), ref.location)
        try:
            graphlib.TopologicalSorter(edges).prepare()
        except graphlib.CycleError as exc:
            cycle = list(exc.args[1])  # [a, b, ..., a]: each uses the one before it
            self.problems.add(
                where[(cycle[1], cycle[0])],
                "targets reference each other's resources: " + " -> ".join(reversed(cycle))
                + "; a target is applied after the targets it uses, so one of them must stop referencing the other",
            )

    def _cycles(self, project: Project, resources: dict[tuple[str, str, str], Resource]) -> None:
        self._target_cycles(project, resources)
        reported: set[frozenset[Address]] = set()
        for target in project.targets:
            mine = {r.address: r for r in resources.values() if r.target == target.name}
            edges = {a: {d for d in r.depends_on if d in mine} for a, r in mine.items()}
            for _ in range(len(mine)):  # each round reports one cycle and breaks it
                sorter = graphlib.TopologicalSorter(edges)
                try:
                    sorter.prepare()
                    break
                except graphlib.CycleError as exc:
                    cycle = list(exc.args[1])
                    edges[cycle[1]].discard(cycle[0])
                    nodes = cycle[:-1]  # report from the smallest address, so the text is stable
                    start = nodes.index(min(nodes))
                    cycle = nodes[start:] + nodes[:start] + [nodes[start]]
                    key = frozenset(cycle)
                    if key in reported:
                        continue
                    reported.add(key)
                    self.problems.add(mine[cycle[0]].location, "dependency cycle: " + " -> ".join(map(str, cycle)))


# A file's name stands for its content: `documentFile` supplies `document`, `dockerfileTemplateFile`
# supplies `dockerfileTemplateData`, so `sensitive: [document]` names the document either way and
# marking the file sensitive masks what it supplies.
SUPPLIED_BY = {k.document.file_field: k.document.inline_field for k in REGISTRY if k.document is not None}
# For `sensitive`, an S3 object's URI stands for the document in it as well (plan reads it).
STANDS_FOR = {
    **SUPPLIED_BY,
    **{k.document.uri_member: k.document.inline_field for k in REGISTRY if k.document is not None},
}


# The checker of each document language a kind may declare.
_CHECKS: dict[str, Callable[[Located, Problems], None]] = {
    "component": awstoe.check_component_document,
    "workflow": awstoe.check_workflow_document,
}


def sensitive_paths(spec: Any) -> list[str]:
    """Dotted paths (`spec.…`) whose values no message, plan or log may show: the spec's
    `sensitive` entries, what a sensitive file supplies, and recipe parameters marked
    `sensitive: true`. Any input is accepted: schema errors are explained before a spec is valid."""
    if not isinstance(spec, Mapping):
        return []
    declared = spec.get("sensitive")
    entries = [s for s in declared if isinstance(s, str) and s] if isinstance(declared, (list, tuple)) else []
    paths = [f"spec.{s}" for s in entries] + [f"spec.{STANDS_FOR[s]}" for s in entries if s in STANDS_FOR]
    components = spec.get("components")
    for i, item in enumerate(components if isinstance(components, (list, tuple)) else ()):
        parameters = item.get("parameters") if isinstance(item, Mapping) else None
        for j, parameter in enumerate(parameters if isinstance(parameters, (list, tuple)) else ()):
            if isinstance(parameter, Mapping) and parameter.get("sensitive") is True:
                paths.append(f"spec.components[{i}].parameters[{j}].value")
    return paths


def _sensitive(value: Any) -> list[str]:
    """Dotted paths, from the document root, whose values a message must not quote."""
    return sensitive_paths(value.get("spec") if isinstance(value, dict) else None)


def _at_key(doc: Located, path: tuple[Any, ...], key: str) -> Callable[[int], Location]:
    """Where a mapping key stands, for a problem found at any offset inside it."""
    return lambda _offset: doc.at((*path, key))


def _file_contents(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the spec's files and S3 objects stand in for (see STANDS_FOR)."""
    return {field: spec[key] for key, field in STANDS_FOR.items() if key in spec}


def _resolved(path: Path) -> Path | None:
    """The real path, or None for a path that cannot exist (a NUL byte, a link loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return None


class _Missing:
    def __init__(self, message: str) -> None:
        self.message = message


def _lookup(project: Project, target: Target, namespace: str, key: str) -> str | _Missing:
    if namespace == "target":
        values = {"name": target.name, "region": target.region}
        if target.account:
            values["account"] = target.account
        if key in values:
            return values[key]
        if key == "account":
            return _Missing(
                f"${{target.account}} is used but target '{target.name}' has no account: set "
                f"'account' (or 'roleArn') for it in {PROJECT_FILE}"
            )
        return _Missing(f"unknown placeholder ${{target.{key}}}; targets have name, region and account")
    if namespace == "vars":
        if key in target.vars:
            value = target.vars[key]
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if PLACEHOLDER.search(text):
                return _Missing(
                    f"${{vars.{key}}} of target '{target.name}' holds a placeholder; "
                    "variable values are used as written, not expanded again"
                )
            return text
        return _Missing(f"unknown variable ${{vars.{key}}} for target '{target.name}'")
    if key not in project.allow_env:
        return _Missing(f"${{env.{key}}} is not allowed: list '{key}' under allowEnv in {PROJECT_FILE} to use it")
    if key not in os.environ:
        return _Missing(f"${{env.{key}}} is allowed but the environment variable {key} is not set")
    return os.environ[key]
