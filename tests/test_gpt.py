"""gptprio operations (SPEC §9.6, §11.6) and the GPT reader/writer, cross-checked with sfdisk/sgdisk when present."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import struct
import subprocess
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core import gptprio
from repo_tool.core.gptprio import Flags, Sets
from repo_tool.errors import UsageError, VerificationError
from repo_tool.node import gpt

MIB = 1 << 20
NAMES = ["BOTTLEROCKET-BOOT-A", "BOTTLEROCKET-ROOT-A", "BOTTLEROCKET-HASH-A", "BOTTLEROCKET-BOOT-B",
         "BOTTLEROCKET-ROOT-B", "BOTTLEROCKET-HASH-B", "BOTTLEROCKET-PRIVATE"]
TYPES = [gpt.BOOT_TYPE, gpt.ROOT_TYPE, gpt.HASH_TYPE] * 2 + [gpt.PRIVATE_TYPE]
BOOTED = Flags(priority=1, tries_left=0, successful=True)
EMPTY = Flags(priority=0, tries_left=0, successful=False)


def small_disk(path: Path, sector_size: int = 512) -> gpt.Disk:
    """An image with small partitions (the layout code is the same as for the defaults)."""
    return gpt.make_disk(path, gpt.DiskLayout(boot_size=MIB, root_size=3 * MIB, hash_size=MIB // 2, private_size=MIB,
                                              sector_size=sector_size))


# --- gptprio: pure operations --------------------------------------------------------------------------------------


def test_spec_vectors_decode_and_set_bits() -> None:
    start = 0x5555555555555555
    flags = gptprio.decode(start)
    assert flags == Flags(priority=5, tries_left=5, successful=True)
    assert flags.will_boot
    step1 = gptprio.encode(start, dataclasses.replace(flags, priority=0))
    assert step1 == 0x5550555555555555
    step2 = gptprio.encode(step1, dataclasses.replace(gptprio.decode(step1), tries_left=0))
    assert step2 == 0x5500555555555555
    step3 = gptprio.encode(step2, dataclasses.replace(gptprio.decode(step2), successful=False))
    assert step3 == 0x5400555555555555
    assert not gptprio.decode(step3).will_boot


@pytest.mark.parametrize("active", ["A", "B"])
def test_spec_vector_two_set_sequence(active: gptprio.SetName) -> None:
    running = Flags(priority=2, tries_left=3, successful=True)
    stale = Flags(priority=1, tries_left=4, successful=True)
    sets = Sets(running, stale, "A") if active == "A" else Sets(stale, running, "B")
    inactive = sets.inactive
    assert inactive == ("B" if active == "A" else "A")

    cleared = gptprio.clear_inactive(sets)
    assert cleared.flags(inactive) == EMPTY
    assert cleared.flags(active) == running
    valid = gptprio.mark_inactive_valid(cleared)
    assert valid.flags(inactive) == Flags(priority=0, tries_left=1, successful=False)
    assert gptprio.next_boot(valid) == active  # tries_left alone (priority 0) does not make a set bootable
    upgraded = gptprio.upgrade_to_inactive(valid)
    assert upgraded.flags(inactive) == Flags(priority=2, tries_left=1, successful=False)
    assert upgraded.flags(active) == Flags(priority=1, tries_left=3, successful=True)
    assert gptprio.next_boot(upgraded) == inactive
    assert upgraded.active == active

    cancelled = gptprio.cancel_upgrade(upgraded)
    assert cancelled.flags(inactive) == Flags(priority=0, tries_left=1, successful=False)  # tries_left untouched
    assert cancelled.flags(active) == Flags(priority=2, tries_left=3, successful=True)
    assert gptprio.next_boot(cancelled) == active
    # update-apply again after update-revert works: the set is still marked valid.
    assert gptprio.upgrade_to_inactive(cancelled).flags(inactive).priority == 2


def test_upgrade_errors_carry_signpost_names() -> None:
    valid = gptprio.mark_inactive_valid(gptprio.clear_inactive(Sets(BOOTED, BOOTED, "A")))
    upgraded = gptprio.upgrade_to_inactive(valid)
    # The error types carry signpost's names; the messages are plain words.
    with pytest.raises(gptprio.InactiveAlreadyMarkedError, match=r"^inactive partition set B .*marked .*priority=2"):
        gptprio.upgrade_to_inactive(upgraded)
    # A previously booted inactive set counts as marked even with priority 0 (it was not cleared).
    with pytest.raises(gptprio.InactiveAlreadyMarkedError):
        gptprio.upgrade_to_inactive(Sets(BOOTED, Flags(priority=0, tries_left=1, successful=True), "A"))
    with pytest.raises(gptprio.InactiveNotValidError, match=r"^inactive partition set A .*not been marked valid"):
        gptprio.upgrade_to_inactive(gptprio.clear_inactive(Sets(BOOTED, BOOTED, "B")))
    with pytest.raises(gptprio.GptPrioError) as caught:
        gptprio.upgrade_to_inactive(Sets(BOOTED, EMPTY, "A"))
    assert isinstance(caught.value, VerificationError)
    assert caught.value.exit_code == 1


def test_mark_successful_boot_and_rollback() -> None:
    sets = Sets(Flags(priority=1, tries_left=0, successful=True), Flags(priority=2, tries_left=0, successful=False),
                "B")
    booted = gptprio.mark_successful_boot(sets)
    assert booted.b == Flags(priority=2, tries_left=0, successful=True)
    assert booted.a == sets.a

    back = gptprio.rollback_to_inactive(booted)
    assert back.a == Flags(priority=2, tries_left=0, successful=True)
    assert back.b == Flags(priority=1, tries_left=0, successful=True)
    assert gptprio.next_boot(back) == "A"

    with pytest.raises(gptprio.InactiveInvalidRollbackError, match=r"^inactive partition set B"):
        gptprio.rollback_to_inactive(Sets(BOOTED, Flags(priority=3, tries_left=0, successful=False), "A"))
    # Priority with tries left is enough to roll back to.
    tried = gptprio.rollback_to_inactive(Sets(BOOTED, Flags(priority=1, tries_left=1, successful=False), "A"))
    assert tried.b.priority == 2 and tried.a.priority == 1


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (Flags(1, 0, True), Flags(2, 1, False), "B"),
        (Flags(2, 0, True), Flags(1, 0, True), "A"),
        (Flags(1, 0, True), Flags(1, 0, True), "A"),  # ties go to A
        (Flags(0, 0, True), Flags(0, 0, True), "A"),  # successful alone boots, priority 0 included
        (Flags(0, 0, False), Flags(1, 0, True), "B"),
        (Flags(3, 0, False), Flags(1, 1, False), "B"),  # A has no tries and never booted
        (Flags(3, 5, False), Flags(0, 5, False), "A"),
        (Flags(0, 3, False), Flags(2, 0, False), None),
        (EMPTY, EMPTY, None),
    ],
)
def test_next_boot(a: Flags, b: Flags, expected: gptprio.SetName | None) -> None:
    assert gptprio.next_boot(Sets(a, b, "A")) == expected
    assert gptprio.next_boot(Sets(a, b, "B")) == expected  # the running set does not matter


@pytest.mark.parametrize(
    ("a", "b", "chosen", "after_a", "after_b"),
    [
        # The update: B is tried once (tries_left used up), A stays as the fallback.
        (Flags(1, 0, True), Flags(2, 1, False), "B", Flags(1, 0, True), Flags(2, 0, False)),
        # The boot after a failed try: B has no tries left and never succeeded, so A boots again.
        (Flags(1, 0, True), Flags(2, 0, False), "A", Flags(1, 0, True), Flags(2, 0, False)),
        (Flags(1, 2, True), Flags(1, 0, True), "A", Flags(1, 1, True), Flags(1, 0, True)),  # tie: first wins
        (Flags(0, 0, True), Flags(1, 0, True), "B", Flags(0, 0, True), Flags(1, 0, True)),
        (Flags(0, 0, True), Flags(0, 3, True), None, Flags(0, 0, True), Flags(0, 3, True)),  # priority must be >= 1
        (EMPTY, EMPTY, None, EMPTY, EMPTY),
    ],
)
def test_grub_boot(a: Flags, b: Flags, chosen: gptprio.SetName | None, after_a: Flags, after_b: Flags) -> None:
    booted, after = gptprio.grub_boot(Sets(a, b, "A"))
    assert booted == chosen
    assert (after.a, after.b) == (after_a, after_b)
    assert after.active == (chosen or "A")


def test_grub_and_next_boot_differ_where_upstream_does() -> None:
    # signpost's will_boot accepts a successful set at priority 0; GRUB needs priority >= 1.
    sets = Sets(Flags(0, 0, True), EMPTY, "A")
    assert gptprio.next_boot(sets) == "A"
    assert gptprio.grub_boot(sets)[0] is None


def test_flags_are_checked() -> None:
    with pytest.raises(ValueError, match="priority"):
        Flags(priority=16, tries_left=0, successful=False)
    with pytest.raises(ValueError, match="tries_left"):
        Flags(priority=0, tries_left=-1, successful=False)
    with pytest.raises(ValueError, match="successful"):
        Flags(priority=0, tries_left=0, successful=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="64-bit"):
        gptprio.decode(1 << 64)
    with pytest.raises(ValueError, match="active set"):
        Sets(EMPTY, EMPTY, "C")  # type: ignore[arg-type]
    assert str(Flags(2, 1, False)) == "priority=2 tries_left=1 successful=false"


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(0, 15), st.integers(0, 15), st.booleans())
def test_encode_decode_round_trip_keeps_other_bits(attributes: int, priority: int, tries: int, ok: bool) -> None:
    flags = Flags(priority=priority, tries_left=tries, successful=ok)
    encoded = gptprio.encode(attributes, flags)
    assert gptprio.decode(encoded) == flags
    mask = 0x1FF << 48
    assert encoded & ~mask == attributes & ~mask
    assert gptprio.encode(encoded, gptprio.decode(attributes)) == attributes


# --- An independent reading of the on-disk structures (for checking what gpt.py writes) ---------------------------


def read_copy(data: bytes, lba: int, sector: int) -> tuple[dict[str, int], bytes]:
    header = data[lba * sector:lba * sector + 92]
    fields = struct.unpack("<8sIIIIQQQQ16sQIII", header)
    assert fields[0] == b"EFI PART"
    zeroed = header[:16] + bytes(4) + header[20:]
    assert zlib.crc32(zeroed) == fields[3], f"header CRC at LBA {lba}"
    names = ["my_lba", "alternate_lba", "first_usable", "last_usable"]
    info = dict(zip(names, fields[5:9]))
    info.update(entries_lba=fields[10], count=fields[11], entry_size=fields[12])
    entries = data[fields[10] * sector:fields[10] * sector + fields[11] * fields[12]]
    assert zlib.crc32(entries) == fields[13], f"entries CRC for the header at LBA {lba}"
    return info, entries


def both_copies(path: Path, sector: int = 512) -> tuple[bytes, bytes]:
    data = path.read_bytes()
    primary, primary_entries = read_copy(data, 1, sector)
    backup, backup_entries = read_copy(data, primary["alternate_lba"], sector)
    assert backup["alternate_lba"] == 1
    assert primary_entries == backup_entries
    return primary_entries, backup_entries


def attributes_of(entries: bytes, index: int) -> int:
    return int(struct.unpack_from("<Q", entries, index * 128 + 48)[0])


def rewrite_entries(path: Path, change: Callable[[bytearray], None], sector: int = 512) -> None:
    """Edit both entry arrays and fix all CRCs, like another partitioning tool would."""
    data = bytearray(path.read_bytes())
    primary, entries = read_copy(bytes(data), 1, sector)
    new = bytearray(entries)
    change(new)
    for lba in (1, primary["alternate_lba"]):
        base = lba * sector
        entries_lba = struct.unpack_from("<Q", data, base + 72)[0]
        data[entries_lba * sector:entries_lba * sector + len(new)] = new
        struct.pack_into("<I", data, base + 88, zlib.crc32(new))
        struct.pack_into("<I", data, base + 16, 0)
        struct.pack_into("<I", data, base + 16, zlib.crc32(data[base:base + 92]))
    path.write_bytes(bytes(data))


# --- make_disk -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sector", [512, 4096])
def test_make_disk_round_trip(tmp_path: Path, sector: int) -> None:
    path = tmp_path / "disk.img"
    made = small_disk(path, sector)
    assert [p.name for p in made.partitions] == NAMES
    assert sorted(os.listdir(tmp_path)) == ["disk.img"]  # no temporary file left behind

    disk = gpt.Disk.open(path)
    assert disk.sector_size == sector
    assert not disk.used_backup
    assert disk.partitions == made.partitions
    parts = disk.partitions
    assert [p.name for p in parts] == NAMES
    assert [p.type_guid for p in parts] == TYPES
    assert [p.index for p in parts] == list(range(7))
    assert [p.size for p in parts] == [MIB, 3 * MIB, MIB // 2, MIB, 3 * MIB, MIB // 2, MIB]
    assert all(p.offset % MIB == 0 for p in parts)
    assert parts[0].offset == MIB
    assert all(a.offset + a.size <= b.offset for a, b in itertools.pairwise(parts))
    assert len({p.unique_guid for p in parts}) == 7
    assert all(p.unique_guid.version == 4 for p in parts)
    assert disk.size == path.stat().st_size
    assert parts[-1].offset + parts[-1].size < disk.size

    assert set(disk.sets) == {"A", "B"}
    assert disk.sets["A"] == gpt.PartitionSet(parts[0], parts[1], parts[2])
    assert disk.sets["B"] == gpt.PartitionSet(parts[3], parts[4], parts[5])
    assert disk.private == parts[6]
    assert disk.flags("A") == BOOTED
    assert disk.flags("B") == EMPTY
    assert disk.ever_booted
    assert parts[0].attributes == (1 << 48) | (1 << 56)
    assert parts[6].attributes == 1 << 57
    assert all(p.attributes == 0 for p in parts[1:6])
    assert disk.load_sets("A") == Sets(BOOTED, EMPTY, "A")
    both_copies(path, sector)


def test_make_disk_defaults_are_sparse(tmp_path: Path) -> None:
    path = tmp_path / "big.img"
    disk = gpt.make_disk(path)
    sizes = [p.size for p in disk.partitions]
    assert sizes == [gpt.DEFAULT_BOOT_SIZE, gpt.DEFAULT_ROOT_SIZE, gpt.DEFAULT_HASH_SIZE] * 2 + [
        gpt.DEFAULT_PRIVATE_SIZE]
    assert path.stat().st_blocks * 512 < 4 * MIB


def test_status(tmp_path: Path) -> None:
    disk = small_disk(tmp_path / "disk.img")
    parts = disk.partitions

    def extents(first: int) -> dict[str, dict[str, int]]:
        return {role: {"offset": parts[first + n].offset, "size": parts[first + n].size}
                for n, role in enumerate(("boot", "root", "hash"))}

    assert gpt.status(disk, "A") == {
        "disk": str(tmp_path / "disk.img"),
        "active": "A",
        "next": "A",
        "ever_booted": True,
        "sets": {
            "A": {"priority": 1, "tries_left": 0, "successful": True, "partitions": extents(0)},
            "B": {"priority": 0, "tries_left": 0, "successful": False, "partitions": extents(3)},
        },
    }
    assert extents(3)["root"] == {"offset": 7 * MIB, "size": 3 * MIB}
    json.dumps(gpt.status(disk, "B"))
    disk.write_flags({"A": EMPTY})
    assert gpt.status(gpt.Disk.open(disk.path), "A")["next"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"boot_size": 0}, "boot partition size must be a positive multiple of the 512-byte"),
        ({"root_size": MIB + 1}, "root partition size"),
        ({"hash_size": -512}, "hash partition size"),
        ({"private_size": 512, "sector_size": 4096}, "private partition size must be a positive multiple of the 4096"),
        ({"sector_size": 1024}, "sector size must be 512 or 4096"),
    ],
)
def test_make_disk_rejects_bad_sizes(tmp_path: Path, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        gpt.make_disk(tmp_path / "disk.img", gpt.DiskLayout(**kwargs))
    assert os.listdir(tmp_path) == []


def test_make_disk_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    path.write_bytes(b"precious")
    with pytest.raises(UsageError, match="already exists"):
        small_disk(path)
    assert path.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["disk.img"]
    with pytest.raises(UsageError, match="cannot create"):
        small_disk(tmp_path / "missing" / "disk.img")


# --- write_flags ---------------------------------------------------------------------------------------------------


def test_write_flags_changes_only_the_flag_bits(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    disk = small_disk(path)
    before = path.read_bytes()
    other_bits = 0xFFFF | (1 << 40) | (1 << 63)  # bits outside gptprio set by someone else must survive
    rewrite_entries(path, lambda e: struct.pack_into("<Q", e, 3 * 128 + 48, other_bits))
    disk = gpt.Disk.open(path)

    new_b = Flags(priority=2, tries_left=1, successful=False)
    disk.write_flags({"A": Flags(priority=1, tries_left=0, successful=True), "B": new_b}, ever_booted=False)
    assert disk.flags("B") == new_b  # the object follows the disk
    assert not disk.ever_booted

    again = gpt.Disk.open(path)
    assert again.flags("B") == new_b
    assert again.flags("A") == BOOTED
    assert not again.ever_booted
    assert again.partitions[3].attributes == gptprio.encode(other_bits, new_b)
    entries, _ = both_copies(path)
    assert attributes_of(entries, 3) == gptprio.encode(other_bits, new_b)
    assert attributes_of(entries, 6) == 0

    # Byte for byte, only attribute fields of entries 3 and 6 and the four CRC fields differ.
    after = path.read_bytes()
    sector = 512
    last = len(after) // sector - 1
    allowed: set[int] = set()
    for header_lba, entries_lba in ((1, 2), (last, last - 32)):
        allowed.update(range(header_lba * sector + 16, header_lba * sector + 20))
        allowed.update(range(header_lba * sector + 88, header_lba * sector + 92))
        for index in (3, 6):
            start = entries_lba * sector + index * 128 + 48
            allowed.update(range(start, start + 8))
    assert len(after) == len(before)
    changed = {i for i, (x, y) in enumerate(zip(before, after)) if x != y}
    assert changed <= allowed
    assert changed  # the flags really were written

    again.write_flags({}, ever_booted=True)
    assert gpt.Disk.open(path).ever_booted


def test_full_update_cycle_on_an_image(tmp_path: Path) -> None:
    """What updog, GRUB and mark-successful-boot do to the table during one update."""
    path = tmp_path / "disk.img"
    disk = small_disk(path)
    sets = disk.load_sets("A")
    for step in (gptprio.clear_inactive, gptprio.mark_inactive_valid, gptprio.upgrade_to_inactive):
        sets = step(sets)
        disk.write_sets(sets)
        assert gpt.Disk.open(path).load_sets("A") == sets
    assert gpt.status(gpt.Disk.open(path), "A")["next"] == "B"

    booted, sets = gptprio.grub_boot(gpt.Disk.open(path).load_sets("A"))
    assert booted == "B"
    disk = gpt.Disk.open(path)
    disk.write_sets(sets)
    sets = gptprio.mark_successful_boot(gpt.Disk.open(path).load_sets("B"))
    disk.write_sets(sets, ever_booted=True)
    final = gpt.Disk.open(path)
    assert final.flags("B") == Flags(priority=2, tries_left=0, successful=True)
    assert final.flags("A") == BOOTED
    assert gpt.status(final, "B")["next"] == "B"
    both_copies(path)


def test_write_refuses_unknown_sets_and_changed_tables(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    disk = small_disk(path)
    stale = gpt.Disk.open(path)
    disk.write_flags({"B": Flags(0, 1, False)})
    with pytest.raises(gpt.GptError, match="changed since it was read"):
        stale.write_flags({"B": EMPTY})
    assert gpt.Disk.open(path).flags("B") == Flags(0, 1, False)
    with pytest.raises(ValueError, match="tries_left"):
        disk.write_flags({"B": Flags(0, 16, False)})


# --- Independent parsers -------------------------------------------------------------------------------------------


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install fdisk gdisk)")
    return found


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def test_sfdisk_reads_what_make_disk_and_write_flags_wrote(tmp_path: Path) -> None:
    sfdisk = tool("sfdisk")
    path = tmp_path / "disk.img"
    disk = small_disk(path)
    disk.write_flags({"B": Flags(priority=2, tries_left=1, successful=False)})

    table = json.loads(run(sfdisk, "--json", str(path)))["partitiontable"]
    assert table["label"] == "gpt"
    assert table["sectorsize"] == 512
    assert table["firstlba"] == 34
    assert table["lastlba"] == disk.size // 512 - 34
    listed = table["partitions"]
    assert [p["name"] for p in listed] == NAMES
    assert [uuid.UUID(p["type"]) for p in listed] == TYPES
    assert [uuid.UUID(p["uuid"]) for p in listed] == [p.unique_guid for p in disk.partitions]
    assert [(p["start"], p["size"]) for p in listed] == [
        (p.first_lba, p.last_lba - p.first_lba + 1) for p in disk.partitions]
    attrs = [p.get("attrs", "") for p in listed]
    assert attrs == ["GUID:48,56", "", "", "GUID:49,52", "", "", "GUID:57"]


def test_sgdisk_verifies_the_tables(tmp_path: Path) -> None:
    sgdisk = tool("sgdisk")
    path = tmp_path / "disk.img"
    small_disk(path).write_flags({"A": Flags(priority=15, tries_left=15, successful=True)})
    assert "No problems found" in run(sgdisk, "--verify", str(path))
    printed = run(sgdisk, "--print", str(path))
    assert "Sector size (logical): 512 bytes" in printed
    assert "BOTTLEROCKET-PRIVATE" in printed
    shown = run(sgdisk, "--attributes=1:show", str(path)).splitlines()  # lines like "1:48:1 (Undefined bit #48)"
    assert [int(line.split(":")[1]) for line in shown] == list(range(48, 57))
    assert [line.split(":")[1] for line in run(sgdisk, "--attributes=7:show", str(path)).splitlines()] == ["57"]


# --- Damaged and unusual tables ------------------------------------------------------------------------------------


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))


@pytest.mark.parametrize(("offset", "what"), [(512 + 40, "header"), (1024 + 128 * 2 + 5, "entries")])
def test_damaged_primary_falls_back_to_backup_and_is_repaired(tmp_path: Path, offset: int, what: str) -> None:
    path = tmp_path / "disk.img"
    small_disk(path)
    flip(path, offset)
    disk = gpt.Disk.open(path)
    assert disk.used_backup, what
    assert [p.name for p in disk.partitions] == NAMES
    assert disk.flags("A") == BOOTED

    disk.write_flags({"B": Flags(0, 1, False)})
    assert not disk.used_backup
    repaired = gpt.Disk.open(path)
    assert not repaired.used_backup
    assert repaired.flags("B") == Flags(0, 1, False)
    both_copies(path)


def test_damaged_backup_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    small_disk(path)
    size = path.stat().st_size
    flip(path, size - 512 + 16)  # the backup header's CRC
    disk = gpt.Disk.open(path)
    assert not disk.used_backup
    disk.write_flags({"B": Flags(0, 1, False)})
    both_copies(path)


def test_both_copies_damaged(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    small_disk(path)
    flip(path, 512 + 40)
    flip(path, path.stat().st_size - 512 + 40)
    with pytest.raises(gpt.GptError, match=r"disk\.img: no valid GPT: primary header \(LBA 1\): header CRC32 "
                                           r"mismatch; backup header \(LBA \d+\): header CRC32 mismatch$"):
        gpt.Disk.open(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "no GPT found"), (bytes(4 * MIB), "no GPT found"), (b"EFI PART" * 200, "no valid GPT")],
)
def test_not_a_gpt(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "blank.img"
    path.write_bytes(content)
    with pytest.raises(gpt.GptError, match=message):
        gpt.Disk.open(path)
    with pytest.raises(gpt.GptError, match="cannot open"):
        gpt.Disk.open(tmp_path / "missing.img")
    with pytest.raises(gpt.GptError, match="not a disk image file or block device"):
        gpt.Disk.open(tmp_path)


def test_one_set_disk(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    small_disk(path)
    rewrite_entries(path, lambda e: e.__setitem__(slice(4 * 128, 5 * 128), bytes(128)))  # drop ROOT-B
    disk = gpt.Disk.open(path)
    assert set(disk.sets) == {"A"}
    assert gpt.status(disk, "A")["sets"].keys() == {"A"}
    assert gpt.status(disk, "A")["next"] == "A"
    with pytest.raises(gpt.GptError, match="Could not find inactive partition set"):
        disk.load_sets("A")
    with pytest.raises(gpt.GptError, match="no partition set B"):
        disk.write_flags({"B": EMPTY})
    with pytest.raises(gpt.GptError, match="no partition set B"):
        gpt.status(disk, "B")


def test_disk_without_bottlerocket_partitions(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    small_disk(path)
    rewrite_entries(path, lambda e: e.__setitem__(slice(1 * 128, 2 * 128), bytes(128)))  # drop ROOT-A
    rewrite_entries(path, lambda e: e.__setitem__(slice(4 * 128, 5 * 128), bytes(128)))  # and ROOT-B
    with pytest.raises(gpt.GptError, match=r"not a Bottlerocket OS disk: no BOTTLEROCKET-ROOT \(5526016a"):
        gpt.Disk.open(path)


def test_partitions_outside_or_overlapping_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    small_disk(path)
    last = path.stat().st_size // 512 - 1
    rewrite_entries(path, lambda e: struct.pack_into("<Q", e, 6 * 128 + 40, last))
    with pytest.raises(gpt.GptError, match=r"partition 7 \(BOTTLEROCKET-PRIVATE\) has LBAs .* outside the usable"):
        gpt.Disk.open(path)
    path.unlink()
    small_disk(path)
    rewrite_entries(path, lambda e: struct.pack_into("<Q", e, 1 * 128 + 32, 2048))
    with pytest.raises(gpt.GptError, match="partitions 1 and 2 overlap"):
        gpt.Disk.open(path)


# --- find_os_disk --------------------------------------------------------------------------------------------------


def fake_host(root: Path, slave: str | None) -> None:
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/mountinfo").write_text(
        "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
        "1 0 8:1 / / ro - ext4 /dev/sda1 ro\n"
        "25 1 254:0 / / ro,relatime shared:1 - ext4 /dev/dm-0 ro,seclabel\n")
    devices = root / "sys/devices/pci0000:00/virtio1/block/vda"
    for number in range(1, 8):
        (devices / f"vda{number}").mkdir(parents=True)
        (devices / f"vda{number}/partition").write_text(f"{number}\n")
    slaves = root / "sys/dev/block/254:0/slaves"
    slaves.mkdir(parents=True)
    if slave:
        (slaves / slave).symlink_to(f"../../../../devices/pci0000:00/virtio1/block/vda/{slave}")
    (root / "dev").mkdir()
    small_disk(root / "dev/vda")


@pytest.mark.parametrize(("slave", "expected"), [("vda2", "A"), ("vda3", "A"), ("vda5", "B"), ("vda6", "B")])
def test_find_os_disk(tmp_path: Path, slave: str, expected: str) -> None:
    fake_host(tmp_path, slave)
    assert gpt.find_os_disk(tmp_path) == (tmp_path / "dev/vda", expected)


@pytest.mark.parametrize(("slave", "message"), [(None, "254:0, which has no lower devices"),
                                                ("vda7", "partition vda7 .* is in neither partition set")])
def test_find_os_disk_failures(tmp_path: Path, slave: str | None, message: str) -> None:
    fake_host(tmp_path, slave)
    with pytest.raises(gpt.GptError, match=f"^cannot find the OS disk: .*{message}.*; pass --disk$"):
        gpt.find_os_disk(tmp_path)
    with pytest.raises(gpt.GptError, match=r"mountinfo.*; pass --disk$"):
        gpt.find_os_disk(tmp_path / "elsewhere")
