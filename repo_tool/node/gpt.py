"""A Bottlerocket OS disk (or a disk image file): read its GUID partition table, change gptprio flags, make one.

Set A is the first partition of each of the BOOT, ROOT and HASH types in table order and set B the
second (SPEC §9.6); each set's gptprio flags live in its BOOT entry's attributes
(:mod:`repo_tool.core.gptprio`), and bit 57 of the PRIVATE entry records that a boot ever succeeded.
The table's on-disk format (headers, entry arrays, CRCs, the protective MBR) is
:mod:`repo_tool.node.gpttable`; this module opens, locks out stale writes, writes and syncs.

:class:`Disk` reads the primary table, or the backup if the primary is
damaged, and :meth:`Disk.write_flags` changes nothing but those attribute bits
(rewriting both copies with fresh CRCs).  :func:`make_disk` creates a sparse
image laid out like an OS disk, for tests and for trying the node client off
a real host.  :func:`status` and :func:`find_os_disk` are signpost's view of a disk.
Nothing here decides which set boots: that is :mod:`repo_tool.core.gptprio`'s.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from repo_tool.core import gptprio
from repo_tool.core.gptprio import Flags, SetName
from repo_tool.errors import IOFailedError, UsageError
from repo_tool.localfs import fsync_dir, make_temp
from repo_tool.node.gpttable import (
    BOOT_TYPE,
    HASH_TYPE,
    MIB,
    PRIVATE_TYPE,
    ROOT_TYPE,
    SECTOR_SIZES,
    SIGNATURE,
    TYPE_NAMES,
    Header,
    Invalid,
    Partition,
    PartitionSet,
    find_sets,
    new_table,
    parse_entries,
    pread,
    read_copy,
    sealed_copies,
    with_attributes,
)

__all__ = ["BOOT_TYPE", "DEFAULT_BOOT_SIZE", "DEFAULT_HASH_SIZE", "DEFAULT_PRIVATE_SIZE", "DEFAULT_ROOT_SIZE",
           "HASH_TYPE", "MIB", "PRIVATE_TYPE", "ROOT_TYPE", "SECTOR_SIZES", "Disk", "DiskLayout", "GptError",
           "Partition", "PartitionSet", "Status", "TableCopies", "find_os_disk", "make_disk", "status"]

DEFAULT_BOOT_SIZE = 40 * MIB
DEFAULT_ROOT_SIZE = 1024 * MIB
DEFAULT_HASH_SIZE = 16 * MIB
DEFAULT_PRIVATE_SIZE = 16 * MIB
BLKSSZGET = 0x1268  # ioctl: logical sector size of a block device


class GptError(IOFailedError):
    """The partition table cannot be read or written, or lacks the Bottlerocket partitions.

    Of the three kinds of error, this is the device's: whatever is wrong with the disk (unreadable,
    no valid table, not a Bottlerocket OS disk) is neither the repository's fault nor the command
    line's, and the node exits 1 for it, as updog does."""


@dataclass(frozen=True)
class DiskLayout:
    """The partition sizes (bytes, each set's) and the sector size of a new disk image (:func:`make_disk`)."""

    boot_size: int = DEFAULT_BOOT_SIZE
    root_size: int = DEFAULT_ROOT_SIZE
    hash_size: int = DEFAULT_HASH_SIZE
    private_size: int = DEFAULT_PRIVATE_SIZE
    sector_size: int = 512


@dataclass(frozen=True)
class TableCopies:
    """A partition table as read or last written: its header copies (None: that copy is damaged; at
    least one is valid) and the entry array they describe."""

    primary: Header | None
    backup: Header | None
    entries: bytes

    @property
    def current(self) -> Header:
        """The copy the table is read from: the primary, else the backup."""
        current = self.primary or self.backup
        assert current is not None
        return current


def _pwrite(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _block_sector_size(fd: int) -> int:
    return int(struct.unpack("<i", fcntl.ioctl(fd, BLKSSZGET, bytes(4)))[0])


class Disk:
    """The partition table of one disk, as read by :meth:`open`; :meth:`write_flags` updates disk and object."""

    def __init__(self, path: Path, sector_size: int, total_sectors: int, table: TableCopies) -> None:
        """Use :meth:`open`."""
        self._path = path
        self._sector_size = sector_size
        self._total_sectors = total_sectors
        self._adopt(table)

    def _adopt(self, table: TableCopies) -> None:
        self._table = table
        self._partitions = parse_entries(table.current, table.entries, self._sector_size)
        self._sets = find_sets(self._partitions)
        privates = [part for part in self._partitions if part.type_guid == PRIVATE_TYPE]
        self._private = privates[0] if privates else None

    @classmethod
    def open(cls, path: Path) -> Disk:
        """Read and check the GPT of the image file or block device at ``path``.

        The primary copy is used when it is intact, else the backup at the last
        LBA; :class:`GptError` if neither is, or if the disk has no BOOT, ROOT
        and HASH partition (set A).
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise GptError(f"{path}: cannot open: {exc.strerror or exc}") from None
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISBLK(mode):
                candidates: tuple[int, ...] = (_block_sector_size(fd),)
            elif stat.S_ISREG(mode):
                candidates = SECTOR_SIZES
            else:
                raise GptError(f"{path}: not a disk image file or block device")
            disk_bytes = os.lseek(fd, 0, os.SEEK_END)
            return cls._load(fd, path, candidates, disk_bytes)
        except OSError as exc:
            raise GptError(f"{path}: cannot read the partition table: {exc.strerror or exc}") from None
        finally:
            os.close(fd)

    @classmethod
    def _load(cls, fd: int, path: Path, candidates: tuple[int, ...], disk_bytes: int) -> Disk:
        def has_signature(offset: int) -> bool:
            return offset > 0 and offset + len(SIGNATURE) <= disk_bytes and os.pread(
                fd, len(SIGNATURE), offset) == SIGNATURE

        sector_size = next((size for size in candidates
                            if has_signature(size) or has_signature((disk_bytes // size - 1) * size)), None)
        if sector_size is None:
            sizes = " or ".join(str(size) for size in candidates)
            raise GptError(f'{path}: no GPT found (no "EFI PART" signature at LBA 1 or the last LBA with {sizes}-byte '
                           "sectors)")
        total_sectors = disk_bytes // sector_size
        primary = backup = None
        entries = b""
        try:
            primary, entries = read_copy(fd, 1, sector_size, total_sectors)
            primary_problem = ""
        except Invalid as exc:
            primary_problem = str(exc)
        backup_lba = primary.alternate_lba if primary else total_sectors - 1
        try:
            backup, backup_entries = read_copy(fd, backup_lba, sector_size, total_sectors)
            backup_problem = ""
            if primary and not backup.matches(primary):
                backup, backup_problem = None, "does not match the primary header"
        except Invalid as exc:
            backup_problem = str(exc)
        if primary is None:
            if backup is None:
                raise GptError(f"{path}: no valid GPT: primary header (LBA 1): {primary_problem}; backup header "
                               f"(LBA {backup_lba}): {backup_problem}")
            entries = backup_entries
        try:
            disk = cls(path, sector_size, total_sectors, TableCopies(primary, backup, entries))
        except Invalid as exc:
            raise GptError(f"{path}: bad partition table: {exc}") from None
        if "A" not in disk.sets:
            missing = [f"BOTTLEROCKET-{TYPE_NAMES[kind]} ({kind})" for kind in (BOOT_TYPE, ROOT_TYPE, HASH_TYPE)
                       if not any(part.type_guid == kind for part in disk.partitions)]
            raise GptError(f"{path}: not a Bottlerocket OS disk: no {', '.join(missing)} partition")
        return disk

    @property
    def path(self) -> Path:
        return self._path

    @property
    def sector_size(self) -> int:
        return self._sector_size

    @property
    def size(self) -> int:
        """The disk's size in bytes (whole sectors)."""
        return self._total_sectors * self._sector_size

    @property
    def partitions(self) -> tuple[Partition, ...]:
        """The used entries, in table order."""
        return self._partitions

    @property
    def sets(self) -> dict[SetName, PartitionSet]:
        """Set A, and set B if the disk has a second partition of each type."""
        return dict(self._sets)

    @property
    def private(self) -> Partition | None:
        return self._private

    @property
    def used_backup(self) -> bool:
        """Whether the primary table was damaged and the backup was read (the next write repairs the primary)."""
        return self._table.primary is None

    @property
    def ever_booted(self) -> bool:
        """Bit 57 of the PRIVATE partition: a boot has ever succeeded (False without a PRIVATE partition)."""
        return self._private is not None and bool(self._private.attributes >> gptprio.EVER_BOOTED_BIT & 1)

    def _set(self, name: SetName) -> PartitionSet:
        try:
            return self._sets[name]
        except KeyError:
            raise GptError(f"{self._path}: has no partition set {name}") from None

    def flags(self, name: SetName) -> Flags:
        """The gptprio flags of set ``name``."""
        return gptprio.decode(self._set(name).boot.attributes)

    def load_sets(self, active: SetName) -> gptprio.Sets:
        """Both sets' flags for :mod:`repo_tool.core.gptprio`; GptError if the disk has only one set."""
        if "B" not in self._sets:
            raise GptError(f"{self._path}: Could not find inactive partition set")
        self._set(active)
        return gptprio.Sets(self.flags("A"), self.flags("B"), active)

    def write_sets(self, sets: gptprio.Sets, ever_booted: bool | None = None) -> None:
        """:meth:`write_flags` with both sets' flags from ``sets``."""
        self.write_flags({"A": sets.a, "B": sets.b}, ever_booted)

    def write_flags(self, flags: Mapping[SetName, Flags], ever_booted: bool | None = None) -> None:
        """Store ``flags`` in the named sets' BOOT entries (and bit 57 of PRIVATE unless ``ever_booted`` is None).

        Only those attribute bits change; both copies of the entry array and
        both headers are rewritten with new CRCs (the backup first, then the
        primary, each followed by an fsync), so a crash leaves one valid copy.
        A damaged copy is rebuilt from the good one.  Raises :class:`GptError`
        if the table on disk changed since it was read.
        """
        current, old_entries = self._table.current, self._table.entries
        changes: dict[Partition, int] = {}
        for name, new in flags.items():
            boot = self._set(name).boot
            changes[boot] = gptprio.encode(boot.attributes, new)
        if ever_booted is not None:
            if self._private is None:
                raise GptError(f"{self._path}: has no BOTTLEROCKET-PRIVATE partition to record a successful boot")
            bit = 1 << gptprio.EVER_BOOTED_BIT
            attributes = self._private.attributes
            changes[self._private] = attributes | bit if ever_booted else attributes & ~bit
        entries = with_attributes(old_entries, current.entry_size, changes)
        try:
            primary, backup = sealed_copies(self._table.primary, self._table.backup, entries, self._sector_size)
        except Invalid as exc:
            raise GptError(f"{self._path}: {exc}") from None
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise GptError(f"{self._path}: cannot open for writing: {exc.strerror or exc}") from None
        try:
            on_disk = (pread(fd, len(current.raw), current.my_lba * self._sector_size),
                       pread(fd, len(old_entries), current.entries_lba * self._sector_size))
            if on_disk != (current.raw, old_entries):
                raise GptError(f"{self._path}: the partition table changed since it was read; not writing")
            for header in (backup, primary):
                _pwrite(fd, entries, header.entries_lba * self._sector_size)
                _pwrite(fd, header.raw, header.my_lba * self._sector_size)
                os.fsync(fd)
        except Invalid as exc:
            raise GptError(f"{self._path}: cannot write the partition table: {exc}") from None
        except OSError as exc:
            raise GptError(f"{self._path}: cannot write the partition table: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        self._adopt(TableCopies(primary, backup, entries))


def make_disk(path: Path, layout: DiskLayout = DiskLayout()) -> Disk:
    """Create a sparse disk image at ``path`` laid out like a Bottlerocket OS disk and return it opened.

    Partitions BOOT-A, ROOT-A, HASH-A, BOOT-B, ROOT-B, HASH-B, PRIVATE (sizes in
    bytes, from ``layout``), laid out by :func:`repo_tool.node.gpttable.new_table`.
    The image is built under a temporary name in the same directory and only
    then linked into place; an existing ``path`` is never overwritten.
    """
    sector_size = layout.sector_size
    if sector_size not in SECTOR_SIZES:
        raise UsageError(f"sector size must be 512 or 4096, not {sector_size}")
    sizes = {"boot": layout.boot_size, "root": layout.root_size, "hash": layout.hash_size,
             "private": layout.private_size}
    for role, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % sector_size:
            raise UsageError(f"{role} partition size must be a positive multiple of the {sector_size}-byte sector "
                             f"size, not {size!r}")
    if os.path.lexists(path):
        raise UsageError(f"{path}: already exists; not overwriting it")

    total_sectors, writes = new_table(sizes, sector_size)
    parent = path.parent
    try:
        fd, temp = make_temp(parent, path.name)
    except OSError as exc:
        raise UsageError(f"{path}: cannot create: {exc.strerror or exc}") from None
    try:
        try:
            os.ftruncate(fd, total_sectors * sector_size)
            for offset, data in writes:
                _pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        _link_new(temp, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot create: {exc.strerror or exc}") from None
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    return Disk.open(path)


def _link_new(temp: str, path: Path) -> None:
    """Give the finished file ``temp`` the name ``path``, refusing (atomically where possible) to replace a file."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise UsageError(f"{path}: already exists; not overwriting it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        # No hard links on this file system: the check above and rename are the best available.
        if os.path.lexists(path):
            raise UsageError(f"{path}: already exists; not overwriting it") from None
        os.rename(temp, path)
    fsync_dir(path.parent)


class PartitionInfo(TypedDict):
    offset: int
    size: int


class SetStatus(TypedDict):
    priority: int
    tries_left: int
    successful: bool
    partitions: dict[str, PartitionInfo]


class Status(TypedDict):
    disk: str
    active: SetName
    next: SetName | None
    ever_booted: bool
    sets: dict[SetName, SetStatus]


def status(disk: Disk, active: SetName) -> Status:
    """Each set's flags and partition extents (bytes from the disk start), the active set and the next boot.

    ``next`` follows signpost: of the sets that would boot, the higher
    priority, ties to A (a one-set disk: A if it would boot).
    """
    sets = disk.sets
    if active not in sets:
        raise GptError(f"{disk.path}: has no partition set {active}")
    # A missing set B never boots.
    flags_b = disk.flags("B") if "B" in sets else Flags(priority=0, tries_left=0, successful=False)
    following = gptprio.next_boot(gptprio.Sets(disk.flags("A"), flags_b, active))
    report: dict[SetName, SetStatus] = {}
    for name, members in sets.items():
        flags = disk.flags(name)
        report[name] = {
            "priority": flags.priority,
            "tries_left": flags.tries_left,
            "successful": flags.successful,
            "partitions": {role: {"offset": part.offset, "size": part.size}
                           for role, part in (("boot", members.boot), ("root", members.root), ("hash", members.hash))},
        }
    return {"disk": str(disk.path), "active": active, "next": following, "ever_booted": disk.ever_booted,
            "sets": report}


def find_os_disk(root: Path = Path("/")) -> tuple[Path, SetName]:
    """The OS disk of the running Bottlerocket host and its active set (SPEC §9.6).

    The device mounted at ``/`` (from ``/proc/self/mountinfo``) is dm-verity;
    its first lower device (``/sys/dev/block/M:m/slaves``) is the active set's
    root or hash partition, whose parent in sysfs is the disk.  ``root`` lets
    tests point at a fake tree.  Raises :class:`GptError` asking for ``--disk``
    when any step fails (for example in a container).
    """
    def fail(reason: str) -> GptError:
        return GptError(f"cannot find the OS disk: {reason}; pass --disk")

    mountinfo = root / "proc/self/mountinfo"
    try:
        lines = mountinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise fail(f"{mountinfo}: {exc.strerror or exc}") from None
    # Fields: mount ID, parent ID, major:minor, root, mount point, ...; the last mount on "/" is the visible one.
    devices = [fields[2] for fields in (line.split() for line in lines) if len(fields) > 4 and fields[4] == "/"]
    if not devices:
        raise fail(f"{mountinfo} has no mount on /")
    slaves = root / "sys/dev/block" / devices[-1] / "slaves"
    try:
        lower = sorted(slaves.iterdir())
    except OSError as exc:
        raise fail(f"/ is on device {devices[-1]}, which has no lower devices ({slaves}: {exc.strerror or exc})"
                   ) from None
    if not lower:
        raise fail(f"/ is on device {devices[-1]}, which has no lower devices in {slaves}")
    partition = lower[0].resolve()
    try:
        number = int((partition / "partition").read_text(encoding="ascii"))
    except (OSError, ValueError):
        raise fail(f"{lower[0].name}, the device under /, is not a partition") from None
    disk = Disk.open(root / "dev" / partition.parent.name)
    for name, members in disk.sets.items():
        if members.contains(number):
            return disk.path, name
    raise fail(f"partition {lower[0].name} (number {number}) is in neither partition set of {disk.path}")
