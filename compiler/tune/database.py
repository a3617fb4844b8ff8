"""The tuning database: JSON lines, one record per measured schedule that beat or equalled the
default, keyed by workload, target manifest and compiler version.

    {"workload": "conv2d(batches=1,...)[weight:...]", "digest": "b6f1...", "kernel": "conv2d",
     "target": "coral-npu", "target_manifest": "<sha256 of targets/coral_npu/target.toml>",
     "compiler_version": "0.1.0", "schedule": {...}, "instructions": 201512,
     "default_instructions": 268978, "tuned_at": "2026-11-21T09:40:00Z", "seed": 0}

Runs append, so records from several runs (or several files: `build --tuning-db A --tuning-db
B`) merge; the best record per workload wins. `tune --target host` writes a summary record per
MetaSchedule task here (kernel "metaschedule"); the schedules themselves are MetaSchedule's
database in FILE.metaschedule/ (compiler/tune/host.py). A record for another target manifest or compiler
version is ignored, with one note per reason: its counts were measured on other code.
"""

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from compiler import __version__
from compiler.errors import CompilerError


def target_manifest(target) -> str:
    """What the records' counts depend on besides the compiler: the target's whole description."""
    return hashlib.sha256((target.folder / "target.toml").read_bytes()).hexdigest()


def record(target, workload, schedule: dict, instructions: int, default_instructions: int, seed: int) -> dict:
    return {"workload": workload.key, "digest": workload.digest, "kernel": workload.kernel, "target": target.name,
            "target_manifest": target_manifest(target), "compiler_version": __version__, "schedule": schedule,
            "instructions": int(instructions), "default_instructions": int(default_instructions),
            "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seed": seed}


def host_record(target, row: dict, metaschedule: Path, seed: int) -> dict:
    """A host task's summary (the schedules themselves are MetaSchedule's, in `metaschedule`)."""
    return {"workload": row["task"], "kernel": "metaschedule", "target": target.name,
            "target_manifest": target_manifest(target), "compiler_version": __version__,
            "schedule": {"metaschedule": str(metaschedule)}, "trials": row["trials"],
            "default_us": row["default_us"], "tuned_us": row["tuned_us"],
            "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seed": seed}


def append(path: Path, records: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        for row in records:
            out.write(json.dumps(row, sort_keys=True) + "\n")


@dataclass
class Database:
    best: dict = field(default_factory=dict)     # workload key -> best record
    ignored: dict = field(default_factory=dict)  # reason -> count
    records: int = 0

    def schedule_for(self, workload) -> dict | None:
        row = self.best.get(workload.key)
        return dict(row["schedule"]) if row else None

    def notes(self) -> list[str]:
        return [f"tuning database: {count} record(s) ignored: {reason}" for reason, count in self.ignored.items()]


def load(paths, target) -> Database:
    """The usable records of `paths` (missing files are an error: a typo must not silently
    build untuned) for `target` at this compiler version."""
    db = Database()
    manifest = target_manifest(target)
    for path in map(Path, paths):
        if not path.is_file():
            raise CompilerError(f"--tuning-db {path}: no such file (write one with `python -m compiler tune`)")
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                reason = _mismatch(row, target, manifest)
                if reason:
                    db.ignored[reason] = db.ignored.get(reason, 0) + 1
                    continue
                key, instructions = row["workload"], int(row["instructions"])
            except (ValueError, KeyError, TypeError) as error:
                raise CompilerError(f"--tuning-db {path}:{number}: not a tuning record ({error})") from None
            db.records += 1
            if key not in db.best or instructions < db.best[key]["instructions"]:
                db.best[key] = row
    return db


def _mismatch(row: dict, target, manifest: str) -> str:
    if row["target"] != target.name:
        return f"for target {row['target']}, not {target.name}"
    if row["target_manifest"] != manifest:
        return f"measured with another {target.name} target.toml"
    if row["compiler_version"] != __version__:
        return f"from compiler version {row['compiler_version']}, not {__version__}"
    return ""
