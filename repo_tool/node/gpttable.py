"""The on-disk format of a GUID partition table: parse and check one copy, change attribute bits, build a new table.

Layout (UEFI 2.x §5.3; all integers little-endian, LBA = sector index):

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
order and set B the second (:func:`find_sets`).

This module is the codec only: it reads one copy through a file descriptor it is given
(:func:`read_copy`) and otherwise turns bytes into values and values into bytes.  It never opens,
writes or syncs a disk, and it raises only :class:`Invalid` (the caller names the disk):
:mod:`repo_tool.node.gpt` does the disk operations.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from repo_tool.core import gptprio
from repo_tool.core.gptprio import SET_NAMES, Flags, SetName

BOOT_TYPE = uuid.UUID("6b636168-7420-6568-2070-6c616e657421")
ROOT_TYPE = uuid.UUID("5526016a-1a97-4ea4-b39a-b7c8c6ca4502")
HASH_TYPE = uuid.UUID("598f10af-c955-4456-6a99-7720068a6cea")
PRIVATE_TYPE = uuid.UUID("440408bb-eb0b-4328-a6e5-a29038fad706")
TYPE_NAMES = {BOOT_TYPE: "BOOT", ROOT_TYPE: "ROOT", HASH_TYPE: "HASH", PRIVATE_TYPE: "PRIVATE"}

MIB = 1 << 20
SECTOR_SIZES = (512, 4096)
"""Sector sizes :func:`new_table` builds and that are probed for in an image file."""

SIGNATURE = b"EFI PART"
REVISION = 0x0001_0000
HEADER_SIZE = 92
ENTRY_SIZE = 128
ENTRY_COUNT = 128

_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")
_ENTRY = struct.Struct("<16s16sQQQ72s")
_HEADER_CRC_OFFSET = 16
_ENTRIES_CRC_OFFSET = 88
_ATTRIBUTES_OFFSET = 48
_MAX_ENTRY_ARRAY = MIB  # far above the usual 16 KiB; bounds what a damaged header can make us read
_UNUSED = bytes(16)

LAYOUT = (
    ("BOTTLEROCKET-BOOT-A", BOOT_TYPE, "boot"),
    ("BOTTLEROCKET-ROOT-A", ROOT_TYPE, "root"),
    ("BOTTLEROCKET-HASH-A", HASH_TYPE, "hash"),
    ("BOTTLEROCKET-BOOT-B", BOOT_TYPE, "boot"),
    ("BOTTLEROCKET-ROOT-B", ROOT_TYPE, "root"),
    ("BOTTLEROCKET-HASH-B", HASH_TYPE, "hash"),
    ("BOTTLEROCKET-PRIVATE", PRIVATE_TYPE, "private"),
)
"""The partitions of an OS disk as :func:`new_table` lays them out: name, type and size role."""


class Invalid(Exception):
    """One copy of the table is unusable, or a change cannot be made; the message says why."""


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
class Header:
    """One GPT header as read (or built), with the fields the table's checks and rewrites need."""

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

    def matches(self, primary: Header) -> bool:
        """Whether this backup header describes the same table as ``primary``."""
        return (self.alternate_lba, self.first_usable, self.last_usable, self.disk_guid, self.entry_count,
                self.entry_size) == (1, primary.first_usable, primary.last_usable, primary.disk_guid,
                                     primary.entry_count, primary.entry_size)

    def moved(self, my_lba: int, alternate_lba: int, entries_lba: int) -> Header:
        """This header as the other copy would have it (the copy that was damaged is rebuilt from it)."""
        raw = bytearray(self.raw)
        struct.pack_into("<QQ", raw, 24, my_lba, alternate_lba)
        struct.pack_into("<Q", raw, 72, entries_lba)
        return dataclasses.replace(self, raw=bytes(raw), my_lba=my_lba, alternate_lba=alternate_lba,
                                   entries_lba=entries_lba)

    def resealed(self, entries_crc: int) -> Header:
        """This header with the given entry-array CRC and a fresh header CRC."""
        raw = bytearray(self.raw)
        struct.pack_into("<I", raw, _ENTRIES_CRC_OFFSET, entries_crc)
        struct.pack_into("<I", raw, _HEADER_CRC_OFFSET, 0)
        struct.pack_into("<I", raw, _HEADER_CRC_OFFSET, zlib.crc32(raw))
        return dataclasses.replace(self, raw=bytes(raw))


def sectors(size: int, sector_size: int) -> int:
    """How many sectors ``size`` bytes take (rounded up)."""
    return -(-size // sector_size)


def pread(fd: int, size: int, offset: int) -> bytes:
    """Exactly ``size`` bytes at ``offset``; :class:`Invalid` if the disk ends before."""
    data = b""
    while len(data) < size:
        chunk = os.pread(fd, size - len(data), offset + len(data))
        if not chunk:
            raise Invalid(f"the disk ends before byte {offset + size}")
        data += chunk
    return data


def read_copy(fd: int, lba: int, sector_size: int, total_sectors: int) -> tuple[Header, bytes]:
    """The header at ``lba`` and its entry array, checked; raises :class:`Invalid` saying what is wrong."""
    if not 0 < lba < total_sectors:
        raise Invalid(f"LBA {lba} is outside the disk ({total_sectors} sectors)")
    sector = pread(fd, sector_size, lba * sector_size)
    (signature, revision, header_size, header_crc, _reserved, my_lba, alternate_lba, first_usable, last_usable,
     disk_guid, entries_lba, entry_count, entry_size, entries_crc) = _HEADER.unpack_from(sector)
    if signature != SIGNATURE:
        raise Invalid('no "EFI PART" signature')
    if not HEADER_SIZE <= header_size <= sector_size:
        raise Invalid(f"bad header size {header_size}")
    raw = bytearray(sector[:header_size])
    struct.pack_into("<I", raw, _HEADER_CRC_OFFSET, 0)
    if zlib.crc32(raw) != header_crc:
        raise Invalid("header CRC32 mismatch")
    if revision >> 16 != 1:
        raise Invalid(f"unsupported revision {revision:#010x}")
    if my_lba != lba:
        raise Invalid(f"header says it is at LBA {my_lba}")
    if not (0 < first_usable <= last_usable < total_sectors and 0 < alternate_lba < total_sectors):
        raise Invalid(f"usable LBAs {first_usable}..{last_usable} or alternate LBA {alternate_lba} do not fit the "
                      f"disk ({total_sectors} sectors)")
    if entry_size < ENTRY_SIZE or entry_size & (entry_size - 1) or not 0 < entry_count * entry_size <= _MAX_ENTRY_ARRAY:
        raise Invalid(f"bad entry array ({entry_count} entries of {entry_size} bytes)")
    entries_end = entries_lba + sectors(entry_count * entry_size, sector_size)  # exclusive
    if not 0 < entries_lba < entries_end <= total_sectors or lba in range(entries_lba, entries_end) or (
            entries_lba <= last_usable and entries_end > first_usable):
        raise Invalid(f"entry array at LBA {entries_lba} overlaps the header, the partitions or the disk end")
    entries = pread(fd, entry_count * entry_size, entries_lba * sector_size)
    if zlib.crc32(entries) != entries_crc:
        raise Invalid("partition entries CRC32 mismatch")
    header = Header(bytes(sector[:header_size]), my_lba, alternate_lba, first_usable, last_usable, disk_guid,
                    entries_lba, entry_count, entry_size)
    return header, entries


def parse_entries(header: Header, entries: bytes, sector_size: int) -> tuple[Partition, ...]:
    """The used entries of ``entries``, in table order; :class:`Invalid` if one lies outside the usable
    LBAs or two overlap."""
    partitions = []
    for index in range(header.entry_count):
        type_guid, unique_guid, first_lba, last_lba, attributes, name = _ENTRY.unpack_from(
            entries, index * header.entry_size)
        if type_guid == _UNUSED:
            continue
        text = name.decode("utf-16-le", errors="replace").split("\0", 1)[0]
        if not header.first_usable <= first_lba <= last_lba <= header.last_usable:
            raise Invalid(f"partition {index + 1} ({text}) has LBAs {first_lba}..{last_lba}, outside the usable "
                          f"{header.first_usable}..{header.last_usable}")
        partitions.append(Partition(index, uuid.UUID(bytes_le=type_guid), uuid.UUID(bytes_le=unique_guid),
                                    first_lba, last_lba, attributes, text, sector_size))
    by_start = sorted(partitions, key=lambda part: part.first_lba)
    for before, after in itertools.pairwise(by_start):
        if after.first_lba <= before.last_lba:
            raise Invalid(f"partitions {before.number} and {after.number} overlap")
    return tuple(partitions)


def find_sets(partitions: tuple[Partition, ...]) -> dict[SetName, PartitionSet]:
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


def with_attributes(entries: bytes, entry_size: int, changes: Mapping[Partition, int]) -> bytes:
    """``entries`` with the attribute bits of each partition in ``changes`` replaced; nothing else changes."""
    edited = bytearray(entries)
    for part, attributes in changes.items():
        struct.pack_into("<Q", edited, part.index * entry_size + _ATTRIBUTES_OFFSET, attributes)
    return bytes(edited)


def sealed_copies(primary: Header | None, backup: Header | None, entries: bytes,
                  sector_size: int) -> tuple[Header, Header]:
    """Both headers for the entry array ``entries``, with fresh CRCs; a damaged (None) copy is rebuilt from
    the other one, :class:`Invalid` if its entry array would not fit where it belongs."""
    current = primary or backup
    assert current is not None
    entry_sectors = sectors(current.entries_bytes, sector_size)
    if primary is None:
        primary = current.moved(1, current.my_lba, 2)
        if 2 + entry_sectors > current.first_usable:
            raise Invalid("cannot rebuild the damaged primary GPT: its entries would overlap the first usable LBA")
    if backup is None:
        backup = current.moved(current.alternate_lba, 1, current.alternate_lba - entry_sectors)
        if backup.entries_lba <= current.last_usable:
            raise Invalid("cannot rebuild the damaged backup GPT: its entries would overlap the last usable LBA")
    crc = zlib.crc32(entries)
    return primary.resealed(crc), backup.resealed(crc)


def new_table(sizes: Mapping[str, int], sector_size: int) -> tuple[int, list[tuple[int, bytes]]]:
    """A new OS disk's table: its size in sectors, and each ``(offset, bytes)`` to write to a zeroed image.

    Partitions as :data:`LAYOUT` (``sizes`` in bytes by role), each starting on a 1 MiB boundary; 128
    entries of 128 bytes in both tables; random GUIDs.  Set A is active and has booted (priority 1,
    tries_left 0, successful), set B is empty (all zero) and PRIVATE has bit 57.
    """
    align = MIB // sector_size
    entry_sectors = sectors(ENTRY_COUNT * ENTRY_SIZE, sector_size)
    entries = bytearray(ENTRY_COUNT * ENTRY_SIZE)
    lba = align
    for index, (name, kind, role) in enumerate(LAYOUT):
        last = lba + sizes[role] // sector_size - 1
        attributes = 0
        if name == "BOTTLEROCKET-BOOT-A":
            attributes = gptprio.encode(0, Flags(priority=1, tries_left=0, successful=True))
        elif kind == PRIVATE_TYPE:
            attributes = 1 << gptprio.EVER_BOOTED_BIT
        _ENTRY.pack_into(entries, index * ENTRY_SIZE, kind.bytes_le, uuid.uuid4().bytes_le, lba, last, attributes,
                         name.encode("utf-16-le"))
        lba = sectors(last + 1, align) * align
    total_sectors = lba + align  # 1 MiB at the end for the backup table
    last_lba = total_sectors - 1
    first_usable, last_usable = 2 + entry_sectors, last_lba - entry_sectors - 1
    # The backup is the primary moved to the last LBA, as when a damaged copy is rebuilt.
    primary, backup = sealed_copies(_new_primary(last_lba, first_usable, last_usable, uuid.uuid4()), None,
                                    bytes(entries), sector_size)
    return total_sectors, [
        (0, _protective_mbr(total_sectors)),
        (2 * sector_size, bytes(entries)),
        (sector_size, primary.raw),
        (backup.entries_lba * sector_size, bytes(entries)),
        (last_lba * sector_size, backup.raw),
    ]


def _new_primary(last_lba: int, first_usable: int, last_usable: int, disk_guid: uuid.UUID) -> Header:
    """A new primary header (LBA 1, entries at LBA 2, the backup at ``last_lba``), its CRCs not yet set."""
    fields = (1, last_lba, first_usable, last_usable, disk_guid.bytes_le, 2, ENTRY_COUNT, ENTRY_SIZE)
    return Header(_HEADER.pack(SIGNATURE, REVISION, HEADER_SIZE, 0, 0, *fields, 0), *fields)


def _protective_mbr(total_sectors: int) -> bytes:
    mbr = bytearray(512)
    # One partition of type 0xEE from LBA 1 to the end of the disk (capped at 2^32 - 1 sectors); CHS fields as
    # UEFI specifies them (start 0/0/2, end "unrepresentable").
    struct.pack_into("<B3sB3sII", mbr, 446, 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1,
                     min(total_sectors - 1, 0xFFFF_FFFF))
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)
