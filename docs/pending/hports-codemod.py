#!/usr/bin/env python3
"""Types the jobs by their ports instead of the adapter classes (issue 20, part 3).

Run from the repository root after every branch of the session is merged:

    python3 docs/pending/hports-codemod.py            # rewrites lib/jobs/**/*.ts
    python3 docs/pending/hports-codemod.py --check    # only says which files would change
    npx biome check --write lib/jobs && npx tsc --noEmit -p tsconfig.json

What it does, in each `lib/jobs/**/*.ts` (and any other folder given as an argument):

1. `Pick<Gateway, 'a' | 'b'>` becomes `Pick<Port, 'a' | 'b'>` with the narrowest port of
   `lib/jobs/ports.ts` that has every picked method, or the bare `Port` when the pick is
   the whole port. A pick with a method no port has is left as it is, and named.
2. A bare adapter class in a type (`ec2: Ec2Gateway`, `=> Ec2Gateway`,
   `Ec2Gateway['listInstancesWithTagKey']`) becomes the adapter's whole port (see
   WHOLE_PORT). Comments are left alone; `new Gateway(` and `instanceof Gateway` are
   named and left alone.
3. The error classes that moved to `lib/aws/errors.ts` (`CreateSnapshotSetError`,
   `ImageNameTakenError`, `UnknownResourceError`) are imported from there instead of
   from their gateway, and the jobs' errors that moved to `lib/jobs/errors.ts`
   (`RunFailedError`, `RunIncompleteError`, `SlotInProgressError`, `BatchRetryError`)
   from there, wherever in lib/, functions/, scripts/, harness/ and test/ they are
   still imported from their old module.
4. Imports follow: adapter class names no longer used are dropped (an empty import
   goes), the ports used are added to the file's `import type { ... } from './ports.ts'`
   (made when missing).
5. After the merge: an adapter (`lib/aws/**`) that still takes the shared records
   (`ActionRecord`, `CreationLedger`, `RunSummary`, `ReportedError`, `RunStatus`,
   `RunTrigger`) from `lib/jobs` takes them from `lib/domain/runRecords.ts`; a moved error
   class still defined in another branch's file (e.g. `BatchRetryError` in
   `lib/jobs/fanOutWorker.ts`) is replaced there by a re-export of its layer's class.

It is idempotent: a second run changes nothing. It writes plain import lines; biome
sorts and wraps them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

# The ports of lib/jobs/ports.ts, by adapter: each port and its methods, narrowest
# first. Keep in step with lib/jobs/ports.ts (test/unit/ports.test.ts checks the
# adapters satisfy them).
INSTANCES = {"listInstancesWithTagKey", "listInstancesByIds", "volumeTagsWithKey"}
SNAPSHOTS = {
    "createSnapshotSet",
    "listSnapshotsTagged",
    "describeSnapshotsByIds",
    "snapshotHolders",
    "deleteSnapshot",
}
IMAGE_PUBLIC_ACCESS = {"imageBlockPublicAccess", "enableImageBlockPublicAccess"}
IMAGES = IMAGE_PUBLIC_ACCESS | {
    "listImagesTagged",
    "listOwnImages",
    "createImage",
    "findImageByName",
    "deregisterImage",
    "instancesUsingImages",
    "imagesInLaunchTemplates",
    "imagesInRecycleBin",
    "listImageSnapshots",
}
COPIES = {
    "copySnapshot",
    "copyImage",
    "snapshotGrants",
    "imageGrants",
    "changeSnapshotGrants",
    "changeImageGrants",
    "publicSnapshots",
    "publicImages",
}
RESTORE = {
    "describeInstance",
    "describeVolume",
    "createVolume",
    "waitForVolume",
    "attachVolume",
    "deleteVolume",
    "describeImagePlatform",
    "registerImage",
    "runInstance",
}
SLOT_CLAIMS = {"claimSlot", "takeOverSlot", "getSlotClaim"}
RUNS = {
    "startRun",
    "renewLease",
    "finishRun",
    "markAbandoned",
    "getRun",
    "recordDispatch",
    "completeRun",
}
JOURNAL = {"record", "recordBatch", "flush"}
BATCHES = {"putBatches", "claimBatch", "finishBatch", "runBatches"}
QUERIES = {"latestRuns", "runsOfJob", "runsOfSchedule", "resourceHistory", "runActions"}
LEDGER = {"recordedCreations", "ledgerStart"}

PORTS: dict[str, list[tuple[str, set[str]]]] = {
    "Ec2Gateway": [
        ("InstancesPort", INSTANCES),
        ("SnapshotsPort", SNAPSHOTS),
        ("Ec2Port", INSTANCES | SNAPSHOTS),
    ],
    "Ec2ImageGateway": [("ImagePublicAccessPort", IMAGE_PUBLIC_ACCESS), ("ImagesPort", IMAGES)],
    "Ec2CopyGateway": [("CopiesPort", COPIES)],
    "Ec2RestoreGateway": [("RestorePort", RESTORE)],
    "AutoScalingGateway": [("ImageHoldersPort", {"imageHolders"})],
    "RecycleBinGateway": [("RecycleBinPort", {"imageRules"})],
    "FanOutQueueGateway": [("FanOutQueuePort", {"send"})],
    "RunHistoryGateway": [
        ("CreationLedgerPort", LEDGER),
        ("SlotClaimsPort", SLOT_CLAIMS),
        ("HistoryJournalPort", JOURNAL),
        ("BatchCheckpointsPort", BATCHES),
        ("HistoryQueriesPort", QUERIES),
        ("RunsPort", RUNS),
        ("RunHistoryPort", SLOT_CLAIMS | RUNS | JOURNAL | BATCHES | QUERIES | LEDGER),
    ],
}
# The port a bare class name in a type becomes: the widest one.
WHOLE_PORT = {adapter: ports[-1][0] for adapter, ports in PORTS.items()}

# Error classes that moved, by name: (old module's file name, new module, relative to lib/).
MOVED_ERRORS = {
    "CreateSnapshotSetError": (("aws/Ec2Gateway.ts",), "aws/errors.ts"),
    "ImageNameTakenError": (("aws/Ec2ImageGateway.ts",), "aws/errors.ts"),
    "UnknownResourceError": (("aws/Ec2RestoreGateway.ts",), "aws/errors.ts"),
    "RunFailedError": (("domain/errors.ts",), "jobs/errors.ts"),
    "RunIncompleteError": (("domain/errors.ts",), "jobs/errors.ts"),
    "SlotInProgressError": (("domain/errors.ts",), "jobs/errors.ts"),
    "BatchRetryError": (("jobs/fanOutJob.ts", "jobs/fanOutWorker.ts"), "jobs/errors.ts"),
}

# The records adapters and jobs share, moved to the domain: re-pointed in lib/aws only
# (the jobs' old modules re-export them).
MOVED_RECORDS = {
    name: (("jobs/ports.ts", "jobs/ownership.ts", "jobs/slotRun.ts"), "domain/runRecords.ts")
    for name in (
        "ActionRecord",
        "CreationLedger",
        "RunSummary",
        "ReportedError",
        "RunStatus",
        "RunTrigger",
    )
}

# Base classes whose import a moved class may leave unused.
BASE_ERRORS = {"SnapkeeperError", "AwsCallError"}

ADAPTERS = "|".join(PORTS)
PICK = re.compile(
    r"Pick<\s*(" + ADAPTERS + r")\s*,\s*((?:\|?\s*'[A-Za-z]+'\s*)+)>", re.MULTILINE
)
IMPORT = re.compile(r"import\s+(type\s+)?\{([^}]*)\}\s+from\s+'([^']+)';\n?")
COMMENT_LINE = re.compile(r"^\s*(\*|/\*|//)")


def port_for(adapter: str, methods: list[str]) -> str | None:
    """The narrowest port of `adapter` with every method, `Pick`ed unless whole."""
    wanted = set(methods)
    for port, has in PORTS[adapter]:
        if wanted <= has:
            if wanted == has - {"flush"} or wanted == has:
                return port
            listed = " | ".join(f"'{m}'" for m in methods)
            return f"Pick<{port}, {listed}>"
    return None


def rewrite_picks(text: str, path: Path, notes: list[str]) -> tuple[str, set[str]]:
    used: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        adapter, listed = match.group(1), match.group(2)
        methods = re.findall(r"'([A-Za-z]+)'", listed)
        port = port_for(adapter, methods)
        if port is None:
            missing = sorted(set(methods) - PORTS[adapter][-1][1])
            notes.append(f"{path}: Pick<{adapter}, ...> kept: no port has {', '.join(missing)}")
            return match.group(0)
        used.add(re.sub(r"^Pick<(\w+),.*$", r"\1", port, flags=re.DOTALL))
        return port

    return PICK.sub(replace, text), used


def body_start(text: str) -> int:
    """Where the import block ends (the first line that is not part of an import)."""
    end = 0
    for match in re.finditer(r"^import[^;]*;\n|^export [^;]*\bfrom\s+'[^']+';\n", text, re.M):
        if text[end:match.start()].strip() and not text[end:match.start()].lstrip().startswith(
            ("/*", "//", "*")
        ):
            break
        end = match.end()
    return end


def rewrite_bare(text: str, path: Path, notes: list[str]) -> tuple[str, set[str]]:
    used: set[str] = set()
    start = body_start(text)
    head, body = text[:start], text[start:]
    lines = body.split("\n")
    bare = re.compile(r"(?<![\w.'\"])(" + ADAPTERS + r")\b(?!\s*\()")
    for i, line in enumerate(lines):
        if COMMENT_LINE.match(line) or line.lstrip().startswith("export {"):
            continue
        if re.search(r"\b(new|instanceof)\s+(" + ADAPTERS + r")\b", line):
            notes.append(f"{path}:{i}: a value use of an adapter class is left alone: {line.strip()}")
            continue

        def replace(match: re.Match[str]) -> str:
            port = WHOLE_PORT[match.group(1)]
            used.add(port)
            return port

        lines[i] = bare.sub(replace, line)
    return head + "\n".join(lines), used


def relative(from_file: Path, lib_path: str, lib_root: Path) -> str:
    rel = os.path.relpath(lib_root / lib_path, from_file.parent).replace(os.sep, "/")
    return rel if rel.startswith(".") else f"./{rel}"


def names_of(listed: str) -> list[str]:
    return [n.strip() for n in listed.split(",") if n.strip()]


def bare_name(name: str) -> str:
    return re.sub(r"^type\s+", "", name).split(" as ")[0].strip()


def format_import(type_only: bool, names: list[str], module: str) -> str:
    return f"import {'type ' if type_only else ''}{{ {', '.join(names)} }} from '{module}';\n"


def fix_imports(
    text: str,
    path: Path,
    lib_root: Path,
    ports_used: set[str],
    adapters_replaced: bool,
    moved: dict[str, tuple[tuple[str, ...], str]],
) -> str:
    """Drops unused adapter names, moves moved errors, adds the ports used."""
    start = body_start(text)
    head, body = text[:start], text[start:]
    moved_to: dict[str, list[tuple[str, bool]]] = {}

    def still_used(name: str) -> bool:
        return re.search(rf"\b{re.escape(name)}\b", body) is not None

    def rewrite(match: re.Match[str]) -> str:
        type_only, listed, module = bool(match.group(1)), match.group(2), match.group(3)
        resolved = (path.parent / module).resolve()
        if not names_of(listed):
            return match.group(0)
        kept: list[str] = []
        for name in names_of(listed):
            plain = bare_name(name)
            is_type = type_only or name.startswith("type ")
            old = next(
                (
                    new
                    for n, (olds, new) in moved.items()
                    if n == plain and any(resolved == (lib_root / o).resolve() for o in olds)
                ),
                None,
            )
            if old is not None:
                moved_to.setdefault(old, []).append((plain, is_type))
                continue
            if adapters_replaced and plain in PORTS and not still_used(plain):
                continue
            if plain in BASE_ERRORS and not is_type and not still_used(plain):
                continue
            kept.append(name)
        if not kept:
            return ""
        if kept == names_of(listed):
            return match.group(0)
        return format_import(type_only, kept, module)

    head = IMPORT.sub(rewrite, head)

    def add(module_lib_path: str, names: list[tuple[str, bool]]) -> None:
        nonlocal head
        module = relative(path, module_lib_path, lib_root)
        for type_only in (True, False):
            wanted = sorted({n for n, t in names if t == type_only})
            if not wanted:
                continue
            existing = next(
                (
                    m
                    for m in IMPORT.finditer(head)
                    if m.group(3) == module and bool(m.group(1)) == type_only
                ),
                None,
            )
            if existing is not None:
                have = names_of(existing.group(2))
                merged = have + [n for n in wanted if n not in map(bare_name, have)]
                head = (
                    head[: existing.start()]
                    + format_import(type_only, merged, module)
                    + head[existing.end() :]
                )
            else:
                head = head + format_import(type_only, wanted, module)

    for new_module, names in moved_to.items():
        add(new_module, names)
    if ports_used:
        add("jobs/ports.ts", [(p, True) for p in ports_used])
    return head + body


def replace_moved_classes(text: str, path: Path, lib_root: Path) -> str:
    """A moved error class still defined here becomes a re-export of its new home."""
    for name, (_, new) in MOVED_ERRORS.items():
        if path.resolve() == (lib_root / new).resolve():
            continue
        definition = re.compile(
            r"(?:/\*\*(?:(?!\*/).)*\*/\n)?export class "
            + name
            + r" extends \w+ \{\n.*?\n\}\n",
            re.DOTALL,
        )
        module = relative(path, new, lib_root)
        reexport = f"export {{ {name} }} from '{module}';\n"
        text, count = definition.subn(reexport, text, count=1)
        if count and re.search(rf"\b{name}\b", text.replace(reexport, "")):
            start = body_start(text)
            text = text[:start] + f"import {{ {name} }} from '{module}';\n" + text[start:]
    return text


def rewrite_file(path: Path, lib_root: Path, notes: list[str], jobs: bool) -> str:
    text = replace_moved_classes(path.read_text(), path, lib_root)
    ports_used: set[str] = set()
    if jobs:
        text, used = rewrite_picks(text, path, notes)
        ports_used |= used
        text, used = rewrite_bare(text, path, notes)
        ports_used |= used
    moved = dict(MOVED_ERRORS)
    if (lib_root / "aws") in path.resolve().parents:
        moved.update(MOVED_RECORDS)
    return fix_imports(text, path, lib_root, ports_used, adapters_replaced=jobs, moved=moved)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*", default=["lib/jobs"], help="folders to type by ports")
    parser.add_argument("--root", default=".", help="the repository root")
    parser.add_argument("--check", action="store_true", help="change nothing; list what would change")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    lib_root = root / "lib"
    job_files = {p.resolve() for f in args.folders for p in (root / f).rglob("*.ts")}
    # The moved error classes are re-pointed everywhere they are imported.
    every_file = [
        p.resolve()
        for f in ("lib", "functions", "scripts", "harness", "test")
        if (root / f).exists()
        for p in (root / f).rglob("*.ts")
        if "node_modules" not in p.parts
    ]
    notes: list[str] = []
    changed: list[str] = []
    for path in sorted(set(every_file) | job_files):
        if path == (lib_root / "jobs/ports.ts").resolve():
            continue
        before = path.read_text()
        after = rewrite_file(path, lib_root, notes, jobs=path in job_files)
        if after != before:
            changed.append(str(path.relative_to(root)))
            if not args.check:
                path.write_text(after)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    verb = "would change" if args.check else "changed"
    print(f"{verb} {len(changed)} file(s)")
    for name in changed:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
