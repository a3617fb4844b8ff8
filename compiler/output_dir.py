"""The output folder (-o OUT): checked before any work, written atomically, replaced only when it
is an earlier build of this compiler.

    out = checked_output(args.output, inputs=[model, calib, ...])   # CompilerError if unsafe
    with staging_dir(out) as staging:                                # a fresh folder beside OUT
        ...write files into staging...
    # on success staging becomes OUT (an earlier build is swapped out under a lock);
    # on any failure or signal, staging is removed and OUT is untouched.

OUT is replaced only if it is empty or holds the marker file a build writes (MARKER) and
nothing besides the files that marker lists (and the files later commands add, LATER_FILES).
It is never the working directory, a folder holding one of the build's inputs (the model, its
external data, calibration or validation data, tuning databases), or a parent of one; a
symbolic link given as OUT is refused. The finished folder gets the permissions the user's
umask gives a new folder.
"""

import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from compiler.errors import CompilerError
from compiler.names import shown

MARKER = ".compiler-build.json"
LATER_FILES = ("run.json",)  # written into a finished build by `run`
_MARKER_KIND = "edge-npu-compiler build output"
_PARTIAL = ".partial-"  # staging folders: .<OUT name>.partial-<pid>-<random>


def checked_output(out, inputs=()) -> Path:
    """OUT resolved (its parents' links followed), after refusing everything unsafe."""
    given = Path(out)
    if given.is_symlink():
        raise CompilerError(f"-o {shown(given)}: is a symbolic link; give the folder itself")
    resolved = given.resolve()
    if resolved == Path(resolved.anchor):
        raise CompilerError(f"-o {shown(given)}: is the file system's root")
    protected = [("the working directory", Path.cwd().resolve())]
    protected += [(f"the folder of {shown(path)}", Path(path).resolve().parent) for path in inputs if path]
    for what, folder in protected:
        if resolved == folder or resolved in folder.parents:
            relation = "is" if resolved == folder else "contains"
            raise CompilerError(f"-o {shown(given)}: {relation} {what}; choose a folder of its own for the build")
    check_replaceable(resolved, given)
    return resolved


def check_replaceable(out: Path, shown_as=None) -> None:
    """CompilerError unless OUT is missing, an empty folder, or an earlier build holding nothing else."""
    name = shown(shown_as if shown_as is not None else out)
    if out.is_symlink():
        raise CompilerError(f"-o {name}: is a symbolic link; give the folder itself")
    if not out.exists():
        return
    if not out.is_dir():
        raise CompilerError(f"-o {name}: exists and is not a folder; choose another path")
    entries = sorted(entry.name for entry in out.iterdir())
    if not entries:
        return
    written = _marker_files(out)
    if written is None:
        raise CompilerError(f"-o {name}: exists and is not an earlier build of this compiler (no {MARKER}); "
                            "choose another folder")
    others = [entry for entry in entries if entry not in written and entry not in LATER_FILES and entry != MARKER]
    if others:
        listed = ", ".join(shown(entry) for entry in others[:3]) + (f" +{len(others) - 3} more" if len(others) > 3 else "")
        raise CompilerError(f"-o {name}: an earlier build, but it also holds files the build did not write ({listed}); "
                            "move them or choose another folder")


def _marker_files(out: Path) -> set | None:
    """The files an earlier build wrote, from its marker; None without a valid marker."""
    marker = out / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != _MARKER_KIND or not isinstance(data.get("files"), list):
        return None
    return {str(name) for name in data["files"]}


def write_marker(folder: Path) -> None:
    files = sorted(entry.name for entry in folder.iterdir() if entry.name != MARKER)
    (folder / MARKER).write_text(json.dumps({"kind": _MARKER_KIND, "files": files}, indent=1) + "\n")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_stale_partials(out: Path) -> None:
    """Staging folders of this OUT left by builds that were killed (their process is gone)."""
    for entry in out.parent.glob(f".{out.name}{_PARTIAL}*"):
        pid = entry.name[len(out.name) + 1 + len(_PARTIAL):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _locked(folder: Path):
    """An exclusive lock on a folder (flock on its descriptor): concurrent builds to the same OUT
    take turns to swap their result in."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


@contextmanager
def staging_dir(out: Path):
    """A temporary folder beside OUT that replaces OUT when the block succeeds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}{_PARTIAL}{os.getpid()}-", dir=out.parent))
    try:
        yield staging
        write_marker(staging)
        staging.chmod(0o777 & ~_umask())
        with _locked(out.parent):
            check_replaceable(out)  # again: another build or the user may have changed it meanwhile
            old = None
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                out.rename(old / "previous")
            staging.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Replace a file inside a finished build without a moment where it is half written."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text)
    temporary.replace(path)
