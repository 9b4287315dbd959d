"""The GUID partition table of a Bottlerocket OS disk (or a disk image file): read it, change gptprio flags, make one.

On-disk format (UEFI 2.x §5.3; all integers little-endian, LBA = sector index):

* LBA 0: protective MBR (one partition of type ``0xEE`` covering the disk).
* LBA 1: primary header, 92 bytes: ``"EFI PART"``, revision ``0x00010000``,
  header size, CRC32 of the header (computed with this field zeroed), reserved,
  its own LBA, the other header's LBA, first and last usable LBA, disk GUID,
  LBA of its entry array, entry count, entry size, CRC32 of the entry array.
* LBA 2…: the entry array; each 128-byte entry holds the type GUID, unique
  GUID, first and last LBA (inclusive), a u64 of attribute bits and a 36
  character UTF-16LE name.  An all-zero type GUID marks an unused entry.
* The last LBA holds the backup header, with its own copy of the entry array
  just before it.

GUIDs are stored mixed-endian (the first three groups byte-swapped), which is
:attr:`uuid.UUID.bytes_le`.  Bottlerocket keeps two partition sets (SPEC §9.6):
set A is the first partition of each of the BOOT, ROOT and HASH types in table
order and set B the second; each set's gptprio flags live in its BOOT entry's
attributes (:mod:`repo_tool.core.gptprio`), and bit 57 of the PRIVATE entry
records that a boot ever succeeded.

:class:`Disk` reads the primary table, or the backup if the primary is
damaged, and :meth:`Disk.write_flags` changes nothing but those attribute bits
(rewriting both copies with fresh CRCs).  :func:`make_disk` creates a sparse
image laid out like an OS disk, for tests and for trying the node client off
a real host.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import itertools
import os
import stat
import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from repo_tool.core import gptprio
from repo_tool.core.gptprio import SET_NAMES, Flags, SetName
from repo_tool.errors import UsageError, VerificationError
from repo_tool.localfs import make_temp

BOOT_TYPE = uuid.UUID("6b636168-7420-6568-2070-6c616e657421")
ROOT_TYPE = uuid.UUID("5526016a-1a97-4ea4-b39a-b7c8c6ca4502")
HASH_TYPE = uuid.UUID("598f10af-c955-4456-6a99-7720068a6cea")
PRIVATE_TYPE = uuid.UUID("440408bb-eb0b-4328-a6e5-a29038fad706")
_TYPE_NAMES = {BOOT_TYPE: "BOOT", ROOT_TYPE: "ROOT", HASH_TYPE: "HASH", PRIVATE_TYPE: "PRIVATE"}

MIB = 1 << 20
DEFAULT_BOOT_SIZE = 40 * MIB
DEFAULT_ROOT_SIZE = 1024 * MIB
DEFAULT_HASH_SIZE = 16 * MIB
DEFAULT_PRIVATE_SIZE = 16 * MIB
SECTOR_SIZES = (512, 4096)
"""Sector sizes :func:`make_disk` writes and that are probed for in an image file."""

SIGNATURE = b"EFI PART"
REVISION = 0x0001_0000
HEADER_SIZE = 92
ENTRY_SIZE = 128
ENTRY_COUNT = 128
BLKSSZGET = 0x1268  # ioctl: logical sector size of a block device

_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")
_ENTRY = struct.Struct("<16s16sQQQ72s")
_HEADER_CRC_OFFSET = 16
_ENTRIES_CRC_OFFSET = 88
_ATTRIBUTES_OFFSET = 48
_NAME_BYTES = 72
_MAX_ENTRY_ARRAY = MIB  # far above the usual 16 KiB; bounds what a damaged header can make us read
_UNUSED = bytes(16)


class GptError(VerificationError):
    """The partition table cannot be read or written, or lacks the Bottlerocket partitions."""


class _Invalid(Exception):
    """One copy of the table is unusable; the message says why."""


@dataclass(frozen=True)
class Partition:
    """One used entry of the partition table; ``offset`` and ``size`` are in bytes from the start of the disk."""

    index: int
    type_guid: uuid.UUID
    unique_guid: uuid.UUID
    first_lba: int
    last_lba: int
    attributes: int
    name: str
    sector_size: int

    @property
    def number(self) -> int:
        """The partition number Linux uses (``/dev/nvme0n1p<number>``): the entry index plus one."""
        return self.index + 1

    @property
    def offset(self) -> int:
        return self.first_lba * self.sector_size

    @property
    def size(self) -> int:
        return (self.last_lba - self.first_lba + 1) * self.sector_size


@dataclass(frozen=True)
class PartitionSet:
    """The boot, root and hash partitions of one set."""

    boot: Partition
    root: Partition
    hash: Partition

    def contains(self, number: int) -> bool:
        """Whether partition ``number`` (Linux numbering) belongs to this set."""
        return number in (self.boot.number, self.root.number, self.hash.number)


@dataclass(frozen=True)
class _Header:
    raw: bytes  # header_size bytes as on disk (the CRC fields are recomputed when written)
    my_lba: int
    alternate_lba: int
    first_usable: int
    last_usable: int
    disk_guid: bytes
    entries_lba: int
    entry_count: int
    entry_size: int

    @property
    def entries_bytes(self) -> int:
        return self.entry_count * self.entry_size

    def moved(self, my_lba: int, alternate_lba: int, entries_lba: int) -> _Header:
        """This header as the other copy would have it (the copy that was damaged is rebuilt from it)."""
        raw = bytearray(self.raw)
        struct.pack_into("<QQ", raw, 24, my_lba, alternate_lba)
        struct.pack_into("<Q", raw, 72, entries_lba)
        return dataclasses.replace(self, raw=bytes(raw), my_lba=my_lba, alternate_lba=alternate_lba,
                                   entries_lba=entries_lba)

    def resealed(self, entries_crc: int) -> _Header:
        """This header with the given entry-array CRC and a fresh header CRC."""
        raw = bytearray(self.raw)
        struct.pack_into("<I", raw, _ENTRIES_CRC_OFFSET, entries_crc)
        struct.pack_into("<I", raw, _HEADER_CRC_OFFSET, 0)
        struct.pack_into("<I", raw, _HEADER_CRC_OFFSET, zlib.crc32(raw))
        return dataclasses.replace(self, raw=bytes(raw))


def _sectors(size: int, sector_size: int) -> int:
    return -(-size // sector_size)


def _pread(fd: int, size: int, offset: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.pread(fd, size - len(data), offset + len(data))
        if not chunk:
            raise _Invalid(f"the disk ends before byte {offset + size}")
        data += chunk
    return data


def _pwrite(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _read_copy(fd: int, lba: int, sector_size: int, total_sectors: int) -> tuple[_Header, bytes]:
    """The header at ``lba`` and its entry array, checked; raises :class:`_Invalid` saying what is wrong."""
    if not 0 < lba < total_sectors:
        raise _Invalid(f"LBA {lba} is outside the disk ({total_sectors} sectors)")
    sector = _pread(fd, sector_size, lba * sector_size)
    (signature, revision, header_size, header_crc, _reserved, my_lba, alternate_lba, first_usable, last_usable,
     disk_guid, entries_lba, entry_count, entry_size, entries_crc) = _HEADER.unpack_from(sector)
    if signature != SIGNATURE:
        raise _Invalid('no "EFI PART" signature')
    if not HEADER_SIZE <= header_size <= sector_size:
        raise _Invalid(f"bad header size {header_size}")
    raw = bytearray(sector[:header_size])
    struct.pack_into("<I", raw, _HEADER_CRC_OFFSET, 0)
    if zlib.crc32(raw) != header_crc:
        raise _Invalid("header CRC32 mismatch")
    if revision >> 16 != 1:
        raise _Invalid(f"unsupported revision {revision:#010x}")
    if my_lba != lba:
        raise _Invalid(f"header says it is at LBA {my_lba}")
    if not (0 < first_usable <= last_usable < total_sectors and 0 < alternate_lba < total_sectors):
        raise _Invalid(f"usable LBAs {first_usable}..{last_usable} or alternate LBA {alternate_lba} do not fit the "
                       f"disk ({total_sectors} sectors)")
    if entry_size < ENTRY_SIZE or entry_size & (entry_size - 1) or not 0 < entry_count * entry_size <= _MAX_ENTRY_ARRAY:
        raise _Invalid(f"bad entry array ({entry_count} entries of {entry_size} bytes)")
    entries_end = entries_lba + _sectors(entry_count * entry_size, sector_size)  # exclusive
    if not 0 < entries_lba < entries_end <= total_sectors or lba in range(entries_lba, entries_end) or (
            entries_lba <= last_usable and entries_end > first_usable):
        raise _Invalid(f"entry array at LBA {entries_lba} overlaps the header, the partitions or the disk end")
    entries = _pread(fd, entry_count * entry_size, entries_lba * sector_size)
    if zlib.crc32(entries) != entries_crc:
        raise _Invalid("partition entries CRC32 mismatch")
    header = _Header(bytes(sector[:header_size]), my_lba, alternate_lba, first_usable, last_usable, disk_guid,
                     entries_lba, entry_count, entry_size)
    return header, entries


def _parse_entries(header: _Header, entries: bytes, sector_size: int) -> tuple[Partition, ...]:
    partitions = []
    for index in range(header.entry_count):
        type_guid, unique_guid, first_lba, last_lba, attributes, name = _ENTRY.unpack_from(
            entries, index * header.entry_size)
        if type_guid == _UNUSED:
            continue
        text = name.decode("utf-16-le", errors="replace").split("\0", 1)[0]
        if not header.first_usable <= first_lba <= last_lba <= header.last_usable:
            raise _Invalid(f"partition {index + 1} ({text}) has LBAs {first_lba}..{last_lba}, outside the usable "
                           f"{header.first_usable}..{header.last_usable}")
        partitions.append(Partition(index, uuid.UUID(bytes_le=type_guid), uuid.UUID(bytes_le=unique_guid),
                                    first_lba, last_lba, attributes, text, sector_size))
    by_start = sorted(partitions, key=lambda part: part.first_lba)
    for before, after in itertools.pairwise(by_start):
        if after.first_lba <= before.last_lba:
            raise _Invalid(f"partitions {before.number} and {after.number} overlap")
    return tuple(partitions)


def _find_sets(partitions: tuple[Partition, ...]) -> dict[SetName, PartitionSet]:
    """Set A from the first partition of each type, set B from the second (when all three types have one)."""
    found: dict[uuid.UUID, list[Partition]] = {BOOT_TYPE: [], ROOT_TYPE: [], HASH_TYPE: []}
    for part in partitions:
        if part.type_guid in found:
            found[part.type_guid].append(part)
    sets: dict[SetName, PartitionSet] = {}
    for nth, name in enumerate(SET_NAMES):
        if all(len(parts) > nth for parts in found.values()):
            sets[name] = PartitionSet(found[BOOT_TYPE][nth], found[ROOT_TYPE][nth], found[HASH_TYPE][nth])
    return sets


def _block_sector_size(fd: int) -> int:
    return int(struct.unpack("<i", fcntl.ioctl(fd, BLKSSZGET, bytes(4)))[0])


class Disk:
    """The partition table of one disk, as read by :meth:`open`; :meth:`write_flags` updates disk and object."""

    def __init__(self, path: Path, sector_size: int, total_sectors: int, primary: _Header | None,
                 backup: _Header | None, entries: bytes) -> None:
        """Use :meth:`open`.  At least one of ``primary`` and ``backup`` is a valid copy; ``entries`` is its array."""
        self._path = path
        self._sector_size = sector_size
        self._total_sectors = total_sectors
        self._adopt(primary, backup, entries)

    def _adopt(self, primary: _Header | None, backup: _Header | None, entries: bytes) -> None:
        current = primary or backup
        assert current is not None
        self._primary = primary
        self._backup = backup
        self._entries = entries
        self._partitions = _parse_entries(current, entries, self._sector_size)
        self._sets = _find_sets(self._partitions)
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
            primary, entries = _read_copy(fd, 1, sector_size, total_sectors)
            primary_problem = ""
        except _Invalid as exc:
            primary_problem = str(exc)
        backup_lba = primary.alternate_lba if primary else total_sectors - 1
        try:
            backup, backup_entries = _read_copy(fd, backup_lba, sector_size, total_sectors)
            backup_problem = ""
            if primary and (backup.alternate_lba, backup.first_usable, backup.last_usable, backup.disk_guid,
                            backup.entry_count, backup.entry_size) != (
                    1, primary.first_usable, primary.last_usable, primary.disk_guid, primary.entry_count,
                    primary.entry_size):
                backup, backup_problem = None, "does not match the primary header"
        except _Invalid as exc:
            backup_problem = str(exc)
        if primary is None:
            if backup is None:
                raise GptError(f"{path}: no valid GPT: primary header (LBA 1): {primary_problem}; backup header "
                               f"(LBA {backup_lba}): {backup_problem}")
            entries = backup_entries
        try:
            disk = cls(path, sector_size, total_sectors, primary, backup, entries)
        except _Invalid as exc:
            raise GptError(f"{path}: bad partition table: {exc}") from None
        if "A" not in disk.sets:
            missing = [f"BOTTLEROCKET-{_TYPE_NAMES[kind]} ({kind})" for kind in (BOOT_TYPE, ROOT_TYPE, HASH_TYPE)
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
        return self._primary is None

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
        entries = bytearray(self._entries)
        current = self._primary or self._backup
        assert current is not None

        def set_attributes(part: Partition, attributes: int) -> None:
            struct.pack_into("<Q", entries, part.index * current.entry_size + _ATTRIBUTES_OFFSET, attributes)

        for name, new in flags.items():
            boot = self._set(name).boot
            set_attributes(boot, gptprio.encode(boot.attributes, new))
        if ever_booted is not None:
            if self._private is None:
                raise GptError(f"{self._path}: has no BOTTLEROCKET-PRIVATE partition to record a successful boot")
            bit = 1 << gptprio.EVER_BOOTED_BIT
            attributes = self._private.attributes
            set_attributes(self._private, attributes | bit if ever_booted else attributes & ~bit)

        entry_sectors = _sectors(current.entries_bytes, self._sector_size)
        if self._primary is not None:
            primary = self._primary
        else:
            primary = current.moved(1, current.my_lba, 2)
            if 2 + entry_sectors > current.first_usable:
                raise GptError(f"{self._path}: cannot rebuild the damaged primary GPT: its entries would overlap the "
                               "first usable LBA")
        if self._backup is not None:
            backup = self._backup
        else:
            backup = current.moved(current.alternate_lba, 1, current.alternate_lba - entry_sectors)
            if backup.entries_lba <= current.last_usable:
                raise GptError(f"{self._path}: cannot rebuild the damaged backup GPT: its entries would overlap the "
                               "last usable LBA")
        crc = zlib.crc32(entries)
        primary, backup = primary.resealed(crc), backup.resealed(crc)
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise GptError(f"{self._path}: cannot open for writing: {exc.strerror or exc}") from None
        try:
            on_disk = (_pread(fd, len(current.raw), current.my_lba * self._sector_size),
                       _pread(fd, len(self._entries), current.entries_lba * self._sector_size))
            if on_disk != (current.raw, self._entries):
                raise GptError(f"{self._path}: the partition table changed since it was read; not writing")
            for header in (backup, primary):
                _pwrite(fd, bytes(entries), header.entries_lba * self._sector_size)
                _pwrite(fd, header.raw, header.my_lba * self._sector_size)
                os.fsync(fd)
        except _Invalid as exc:
            raise GptError(f"{self._path}: cannot write the partition table: {exc}") from None
        except OSError as exc:
            raise GptError(f"{self._path}: cannot write the partition table: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        self._adopt(primary, backup, bytes(entries))


_LAYOUT = (
    ("BOTTLEROCKET-BOOT-A", BOOT_TYPE, "boot"),
    ("BOTTLEROCKET-ROOT-A", ROOT_TYPE, "root"),
    ("BOTTLEROCKET-HASH-A", HASH_TYPE, "hash"),
    ("BOTTLEROCKET-BOOT-B", BOOT_TYPE, "boot"),
    ("BOTTLEROCKET-ROOT-B", ROOT_TYPE, "root"),
    ("BOTTLEROCKET-HASH-B", HASH_TYPE, "hash"),
    ("BOTTLEROCKET-PRIVATE", PRIVATE_TYPE, "private"),
)


def _new_header(my_lba: int, alternate_lba: int, first_usable: int, last_usable: int, disk_guid: uuid.UUID,
                entries_lba: int, entries_crc: int) -> bytes:
    header = _Header(_HEADER.pack(SIGNATURE, REVISION, HEADER_SIZE, 0, 0, my_lba, alternate_lba, first_usable,
                                  last_usable, disk_guid.bytes_le, entries_lba, ENTRY_COUNT, ENTRY_SIZE, 0),
                     my_lba, alternate_lba, first_usable, last_usable, disk_guid.bytes_le, entries_lba, ENTRY_COUNT,
                     ENTRY_SIZE)
    return header.resealed(entries_crc).raw


def _protective_mbr(total_sectors: int) -> bytes:
    mbr = bytearray(512)
    # One partition of type 0xEE from LBA 1 to the end of the disk (capped at 2^32 - 1 sectors); CHS fields as
    # UEFI specifies them (start 0/0/2, end "unrepresentable").
    struct.pack_into("<B3sB3sII", mbr, 446, 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1,
                     min(total_sectors - 1, 0xFFFF_FFFF))
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def make_disk(path: Path, boot_size: int = DEFAULT_BOOT_SIZE, root_size: int = DEFAULT_ROOT_SIZE,
              hash_size: int = DEFAULT_HASH_SIZE, private_size: int = DEFAULT_PRIVATE_SIZE,
              sector_size: int = 512) -> Disk:
    """Create a sparse disk image at ``path`` laid out like a Bottlerocket OS disk and return it opened.

    Partitions BOOT-A, ROOT-A, HASH-A, BOOT-B, ROOT-B, HASH-B, PRIVATE (sizes in
    bytes), each starting on a 1 MiB boundary; 128 entries of 128 bytes in both
    tables; random GUIDs.  Set A is active and has booted (priority 1,
    tries_left 0, successful), set B is empty (all zero) and PRIVATE has bit 57.
    The image is built under a temporary name in the same directory and only
    then linked into place; an existing ``path`` is never overwritten.
    """
    if sector_size not in SECTOR_SIZES:
        raise UsageError(f"sector size must be 512 or 4096, not {sector_size}")
    sizes = {"boot": boot_size, "root": root_size, "hash": hash_size, "private": private_size}
    for role, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % sector_size:
            raise UsageError(f"{role} partition size must be a positive multiple of the {sector_size}-byte sector "
                             f"size, not {size!r}")
    if os.path.lexists(path):
        raise UsageError(f"{path}: already exists; not overwriting it")

    align = MIB // sector_size
    entry_sectors = _sectors(ENTRY_COUNT * ENTRY_SIZE, sector_size)
    entries = bytearray(ENTRY_COUNT * ENTRY_SIZE)
    lba = align
    for index, (name, kind, role) in enumerate(_LAYOUT):
        last = lba + sizes[role] // sector_size - 1
        attributes = 0
        if name == "BOTTLEROCKET-BOOT-A":
            attributes = gptprio.encode(0, Flags(priority=1, tries_left=0, successful=True))
        elif kind == PRIVATE_TYPE:
            attributes = 1 << gptprio.EVER_BOOTED_BIT
        _ENTRY.pack_into(entries, index * ENTRY_SIZE, kind.bytes_le, uuid.uuid4().bytes_le, lba, last, attributes,
                         name.encode("utf-16-le"))
        lba = _sectors(last + 1, align) * align
    total_sectors = lba + align  # 1 MiB at the end for the backup table
    last_lba = total_sectors - 1
    first_usable, last_usable = 2 + entry_sectors, last_lba - entry_sectors - 1
    disk_guid, crc = uuid.uuid4(), zlib.crc32(entries)

    parent = path.parent
    try:
        fd, temp = make_temp(parent, path.name)
    except OSError as exc:
        raise UsageError(f"{path}: cannot create: {exc.strerror or exc}") from None
    try:
        try:
            os.ftruncate(fd, total_sectors * sector_size)
            _pwrite(fd, _protective_mbr(total_sectors), 0)
            _pwrite(fd, bytes(entries), 2 * sector_size)
            _pwrite(fd, _new_header(1, last_lba, first_usable, last_usable, disk_guid, 2, crc), sector_size)
            _pwrite(fd, bytes(entries), (last_lba - entry_sectors) * sector_size)
            _pwrite(fd, _new_header(last_lba, 1, first_usable, last_usable, disk_guid, last_lba - entry_sectors, crc),
                    last_lba * sector_size)
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
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


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
