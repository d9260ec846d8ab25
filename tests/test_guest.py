"""The guest program (compatlab.oracles.guest), without QEMU.

Each instruction form is pinned to its encoding in the Intel SDM (vol. 2). Then
whole programs run on a small interpreter written here from the SDM (it decodes
only the forms the encoder emits, and fails on anything else) against devices
whose dwords keep what is written under a mask: the port accesses must be
exactly those the human monitor made (every read of every device, then the probe
of each, :func:`probe_sequence` per dword), and the results land where
:class:`Layout` reads them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from compatlab.oracles.guest import (
    AX,
    BX,
    CX,
    DI,
    DONE,
    DX,
    IMAGE_SIZE,
    RESULTS,
    Assembler,
    Layout,
    config_address,
    probe_sequence,
    program,
)

FORMS: list[tuple[str, Callable[[Assembler], None], str]] = [
    ("mov ax, 0x1234", lambda a: a.mov_imm16(AX, 0x1234), "b83412"),
    ("mov dx, 0xcf8", lambda a: a.mov_imm16(DX, 0xCF8), "baf80c"),
    ("mov cx, 64", lambda a: a.mov_imm16(CX, 64), "b94000"),
    ("mov di, 0", lambda a: a.mov_imm16(DI, 0), "bf0000"),
    ("mov eax, 0xffffffff", lambda a: a.mov_imm32(AX, 0xFFFFFFFF), "66b8ffffffff"),
    ("mov ebx, 0x80001800", lambda a: a.mov_imm32(BX, 0x80001800), "66bb00180080"),
    ("mov al, 6", lambda a: a.mov_al_imm8(6), "b006"),
    ("mov es, ax", lambda a: a.mov_es_ax(), "8ec0"),
    ("mov eax, ebx", lambda a: a.mov_eax_ebx(), "6689d8"),
    ("mov es:[di+0x100], eax", lambda a: a.store_eax(0x100), "2666898500" + "01"),
    ("mov eax, es:[di]", lambda a: a.load_eax(0), "26668b850000"),
    ("add di, 4", lambda a: a.add_imm8(DI, 4), "83c704"),
    ("add ebx, 4", lambda a: a.add_imm8(BX, 4, wide=True), "6683c304"),
    ("out dx, eax", lambda a: a.out_dx_eax(), "66ef"),
    ("out dx, al", lambda a: a.out_dx_al(), "ee"),
    ("in eax, dx", lambda a: a.in_eax_dx(), "66ed"),
    ("hlt", lambda a: a.hlt(), "f4"),
    ("jmp $", lambda a: a.jmp(0), "ebfe"),
    ("loop $", lambda a: a.loop(0), "e2fe"),
]


@pytest.mark.parametrize(("text", "emit", "encoding"), FORMS, ids=[f[0] for f in FORMS])
def test_each_instruction_form_encodes_as_the_sdm_says(
    text: str, emit: Callable[[Assembler], None], encoding: str
) -> None:
    asm = Assembler()
    emit(asm)
    assert asm.code.hex() == encoding


def test_a_jump_too_far_for_rel8_is_refused() -> None:
    asm = Assembler()
    asm.fill_to(200)
    with pytest.raises(ValueError, match="rel8"):
        asm.loop(0)


def test_the_reset_vector_jumps_to_the_program() -> None:
    image = program([], probe=False)
    assert len(image) == IMAGE_SIZE
    # jmp rel16 at CS:FFF0 to CS:0000 (IP wraps at 64 KiB)
    assert image[0xFFF0:0xFFF3] == bytes.fromhex("e90d00")


class Machine:
    """Just enough of a real-mode x86 for the programs the encoder writes: 16-bit
    code, the 0x66 operand-size and 0x26 (ES) prefixes; devices on bus 0 behind
    ports 0xCF8/0xCFC whose dwords keep written bits under ``wmask``; a reset
    request on port 0xCF9 stops it."""

    def __init__(self, image: bytes, devices: dict[tuple[int, int], bytearray], wmask: int):
        self.image = image
        self.devices = devices
        self.wmask = wmask
        self.regs = [0] * 8
        self.es = 0
        self.ram: dict[int, int] = {}
        self.address = 0
        self.accesses: list[tuple[str, int, int | None]] = []

    def dword(self) -> tuple[bytearray, int] | None:
        if not self.address & 0x80000000 or self.address >> 16 & 0xFF:
            return None
        space = self.devices.get((self.address >> 11 & 0x1F, self.address >> 8 & 7))
        return None if space is None else (space, self.address & 0xFC)

    def port_out(self, port: int, value: int, size: int) -> bool:
        self.accesses.append(("out", port, value))
        if port == 0xCF9 and size == 1:
            return value & 4 != 0  # PIIX3 reset control: reset CPU
        assert size == 4 and port in (0xCF8, 0xCFC), f"out to {port:#x}"
        if port == 0xCF8:
            self.address = value
        elif (where := self.dword()) is not None:
            space, offset = where
            old = int.from_bytes(space[offset : offset + 4], "little")
            new = (old & ~self.wmask) | (value & self.wmask)
            space[offset : offset + 4] = new.to_bytes(4, "little")
        return False

    def port_in(self, port: int) -> int:
        assert port == 0xCFC, f"in from {port:#x}"
        self.accesses.append(("in", port, None))
        where = self.dword()
        if where is None:
            return 0xFFFFFFFF
        space, offset = where
        return int.from_bytes(space[offset : offset + 4], "little")

    def run(self, limit: int = 10_000_000) -> None:
        ip, code = 0xFFF0, self.image
        for _ in range(limit):
            wide = segment_es = False
            while code[ip] in (0x66, 0x26):
                wide |= code[ip] == 0x66
                segment_es |= code[ip] == 0x26
                ip += 1
            op, size = code[ip], 4 if wide else 2
            imm16 = int.from_bytes(code[ip + 1 : ip + 3], "little")
            if 0xB8 <= op <= 0xBF:
                value = int.from_bytes(code[ip + 1 : ip + 1 + size], "little")
                self.regs[op - 0xB8] = value
                ip += 1 + size
            elif op == 0xB0:
                self.regs[AX] = (self.regs[AX] & ~0xFF) | code[ip + 1]
                ip += 2
            elif op == 0x8E and code[ip + 1] == 0xC0:
                self.es = self.regs[AX] & 0xFFFF
                ip += 2
            elif op == 0x89 and code[ip + 1] == 0xD8 and wide:
                self.regs[AX] = self.regs[BX]
                ip += 2
            elif op in (0x89, 0x8B) and code[ip + 1] == 0x85 and wide and segment_es:
                disp = int.from_bytes(code[ip + 2 : ip + 4], "little")
                at = self.es * 16 + ((self.regs[DI] + disp) & 0xFFFF)
                if op == 0x89:
                    for k in range(4):
                        self.ram[at + k] = self.regs[AX] >> (8 * k) & 0xFF
                else:
                    self.regs[AX] = sum(self.ram.get(at + k, 0) << (8 * k) for k in range(4))
                ip += 4
            elif op == 0x83 and code[ip + 1] >> 3 == 0b11_000:
                reg, mask = code[ip + 1] & 7, (1 << (8 * size)) - 1
                self.regs[reg] = (self.regs[reg] + code[ip + 2]) & mask
                ip += 3
            elif op == 0xEF and wide:
                if self.port_out(self.regs[DX] & 0xFFFF, self.regs[AX], 4):
                    return
                ip += 1
            elif op == 0xEE:
                if self.port_out(self.regs[DX] & 0xFFFF, self.regs[AX] & 0xFF, 1):
                    return
                ip += 1
            elif op == 0xED and wide:
                self.regs[AX] = self.port_in(self.regs[DX] & 0xFFFF)
                ip += 1
            elif op == 0xE2:
                self.regs[CX] = (self.regs[CX] - 1) & 0xFFFF
                ip += 2
                if self.regs[CX]:
                    ip += code[ip - 1] - 256 if code[ip - 1] > 127 else code[ip - 1]
            elif op == 0xE9:
                ip = (ip + 3 + imm16) & 0xFFFF
            else:
                raise AssertionError(f"the program ran into {code[ip : ip + 4].hex()} at {ip:#x}")
        raise AssertionError("the program did not stop")

    def dump(self, layout: Layout) -> bytes:
        return bytes(self.ram.get(RESULTS + i, 0) for i in range(layout.size))


def monitor_accesses(
    functions: list[tuple[int, int]], spaces: list[bytes], probe: bool
) -> list[tuple[str, int, int | None]]:
    """The port accesses the human-monitor oracle made (``o /w``, ``i /w``)."""
    out: list[tuple[str, int, int | None]] = []
    for slot, fn in functions:
        for offset in range(0, 256, 4):
            out += [("out", 0xCF8, config_address(slot, fn, offset)), ("in", 0xCFC, None)]
    for (slot, fn), space in zip(functions, spaces, strict=True) if probe else ():
        for offset in range(0, 256, 4):
            out.append(("out", 0xCF8, config_address(slot, fn, offset)))
            original = int.from_bytes(space[offset : offset + 4], "little")
            for written, read in probe_sequence(offset, original):
                if written is not None:
                    out.append(("out", 0xCFC, written))
                if read:
                    out.append(("in", 0xCFC, None))
    return [*out, ("out", 0xCF9, 0x06)]


WMASK = 0x00FF_F0F0  # some bits stick, some do not, in every byte position


@pytest.mark.parametrize(
    ("count", "probe"), [(0, False), (1, False), (1, True), (3, True), (240, True)]
)
def test_a_program_makes_the_monitor_s_accesses_and_leaves_its_results(
    count: int, probe: bool
) -> None:
    functions = [(0x02 + i % 30, i // 30) for i in range(count)]
    originals = [bytes((i * 7 + b) & 0xFF for b in range(256)) for i in range(count)]
    devices = {f: bytearray(o) for f, o in zip(functions, originals, strict=True)}
    machine = Machine(program(functions, probe=probe), devices, WMASK)
    machine.run()
    assert machine.accesses == monitor_accesses(functions, originals, probe)
    assert [bytes(d) for d in devices.values()] == originals, "every dword restored"
    layout = Layout(count, probe)
    parsed = layout.parse(machine.dump(layout))
    assert parsed is not None, "no done marker"
    spaces, images = parsed
    assert spaces == originals
    for original, probes in zip(originals, images, strict=True):
        assert len(probes) == (2 if probe else 0)
        for image, written in zip(probes, (0xFFFFFFFF, 0), strict=False):
            for offset in range(0, 256, 4):
                old = int.from_bytes(original[offset : offset + 4], "little")
                want = (old & ~WMASK) | (written & WMASK)
                assert int.from_bytes(image[offset : offset + 4], "little") == want


def test_results_without_the_done_marker_or_of_the_wrong_size_are_refused() -> None:
    layout = Layout(2, True)
    full = bytes(layout.size - 4) + DONE.to_bytes(4, "little")
    assert layout.parse(full) is not None
    assert layout.parse(bytes(layout.size)) is None
    assert layout.parse(full[:-1]) is None
    assert layout.parse(full + b"\0") is None


def test_probe_sequence_writes_ones_then_zeros_and_restores() -> None:
    assert probe_sequence(0x10, 0x1234) == [(0xFFFFFFFF, True), (0, True), (0x1234, False)]
