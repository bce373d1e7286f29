"""A tiny read-only FUSE file system whose replies can be withheld: the hung NFS server.

Run as ``python -m sim.realhost.fusefs MOUNTPOINT CONTROL_FILE VOLUMES``.  While
``CONTROL_FILE`` exists every operation waits (the caller sleeps in the kernel, as on a hard
NFS mount whose server stopped answering); removing it lets them all finish.  Attribute and
entry caching are off so that every lookup reaches the server.

fusepy (PyPI, pure ctypes over libfuse2) is used because it needs no compiler and no
binding of its own; the optional extra ``realhost`` pulls it in.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

VOLUME_BYTES = 1 << 20
POLL_S = 0.02


def _fuse() -> Any:
    try:
        import fuse
    except (ImportError, OSError) as err:  # OSError: libfuse itself is missing
        raise SystemExit(f"fusepy or libfuse2 is missing ({err}): pip install fusepy") from err
    return fuse


class BlockingFS:
    """``vol-<i>.img`` files of zeros in one directory; every reply waits on the gate."""

    def __init__(self, control: Path, volumes: int) -> None:
        self.control = control
        self.names = [f"vol-{i}.img" for i in range(volumes)]
        self.t0 = time.time()

    def _gate(self) -> None:
        while self.control.exists():
            time.sleep(POLL_S)

    def __call__(self, op: str, *args: Any) -> Any:
        """Serve operation ``op``: first wait while the control file exists; an operation not
        implemented fails with ENOSYS.
        """
        self._gate()
        handler = getattr(self, op, None)
        if handler is None:
            raise _fuse().FuseOSError(errno.ENOSYS)
        return handler(*args)

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        """Attributes of the root directory or of a volume file; ENOENT otherwise."""
        base = {"st_uid": 0, "st_gid": 0, "st_atime": self.t0, "st_mtime": self.t0}
        if path == "/":
            return base | {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2, "st_ctime": self.t0}
        if path.lstrip("/") in self.names:
            mode = stat.S_IFREG | 0o644
            return base | {
                "st_mode": mode,
                "st_nlink": 1,
                "st_size": VOLUME_BYTES,
                "st_ctime": self.t0,
            }
        raise _fuse().FuseOSError(errno.ENOENT)

    def readdir(self, path: str, fh: int) -> list[str]:
        """The root's entries: the volume files."""
        return [".", "..", *self.names]

    def opendir(self, path: str) -> int:
        """Open a directory (always succeeds)."""
        return 0

    def releasedir(self, path: str, fh: int) -> int:
        """Close a directory."""
        return 0

    def open(self, path: str, flags: int) -> int:
        """Open a volume file (ENOENT for any other name)."""
        if path.lstrip("/") not in self.names:
            raise _fuse().FuseOSError(errno.ENOENT)
        return 0

    def release(self, path: str, fh: int) -> int:
        """Close a file."""
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        """``size`` zero bytes from ``offset``, up to the end of the volume."""
        return bytes(max(0, min(size, VOLUME_BYTES - offset)))

    def access(self, path: str, amode: int) -> int:
        """Every access is allowed."""
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        """Fixed file-system figures (4 KiB blocks, half free)."""
        blocks = 1 << 16
        return {
            "f_bsize": 4096,
            "f_frsize": 4096,
            "f_blocks": blocks,
            "f_bfree": blocks // 2,
            "f_bavail": blocks // 2,
            "f_files": 1024,
            "f_ffree": 1000,
            "f_namemax": 255,
        }


def main(argv: list[str]) -> None:
    """Mount the file system at ``argv[0]`` with control file ``argv[1]`` and ``argv[2]``
    volumes; serves in the foreground until unmounted.
    """
    mount, control, volumes = Path(argv[0]), Path(argv[1]), int(argv[2])
    fuse = _fuse()
    ops = BlockingFS(control, volumes)

    class Ops(fuse.Operations):  # type: ignore[misc,name-defined]
        def __call__(self, op: str, *args: Any) -> Any:
            return ops(op, *args)

    os.umask(0o022)
    fuse.FUSE(
        Ops(),
        str(mount),
        foreground=True,
        nothreads=False,
        ro=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
        fsname="virtchaos-fuse",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
