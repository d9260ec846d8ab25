"""The guest program: config-space reads and write probes done by QEMU's own CPU.

The monitor can do port I/O for us (``o /w``, ``i /w``), but one command per access
made a write probe cost some three hundred monitor round trips per device. Instead
the oracle starts QEMU with a firmware image of its own (``-bios``): a few hundred
bytes of x86 real-mode code, run from the reset vector once the oracle lets the paused
machine go, that makes exactly the port accesses the monitor would have made, in the
same order, and leaves what it read in guest RAM. The oracle reads that back in one
``pmemsave``. It replaced the monitor path everywhere: every release the oracle runs
(5.2, 7.2, 10.0 and 11.1) runs it, and the captures they recorded through the monitor
are captured again byte for byte (``tests/test_oracle_identity.py``).

What the program does, device by device in the order asked:

1. read: for each dword of the 256 bytes, write
   ``0x80000000 | slot << 11 | fn << 8 | offset`` to port 0xCF8 and read port 0xCFC
   (the legacy configuration mechanism, PCI Local Bus 3.0 §3.2.2.3.2);
2. then, with a write probe, for each device again and each dword: select it at 0xCF8
   and run :data:`PROBE_STEPS` on 0xCFC (write all-ones, read, write zeros, read,
   write the value first read). Every read of all devices comes before any write, as
   the monitor path did it;
3. store :data:`DONE` after the last result and ask for a reset through the PIIX3
   reset control register (port 0xCF9, bit 2: QEMU ``hw/isa/piix*.c``). QEMU runs
   with ``-no-reboot -no-shutdown``, so the reset request stops the machine instead,
   RAM untouched, and says so on QMP (``STOP``).

Nothing else is touched: no memory but the result area, no register but 0xCF8, 0xCFC
and 0xCF9. The command register stays 0 except while the probe of dword 0x04 runs,
exactly as with the monitor. A BAR that reads 0 is never mapped while it does
(QEMU ``hw/pci/pci.c``, ``pci_bar_address``), and the PCI hole ranks below RAM, so
neither the program's code nor its results can be shadowed.

Layout: device ``i``'s results start at :data:`RESULTS` ``+ i * block`` (the 256
bytes read, then with a probe one 256-byte image per read of :data:`PROBE_STEPS`),
each block reached through a segment of its own so that 240 devices fit; the done
marker is the dword after the last block. The machine code comes from a tiny encoder
(:class:`Assembler`), one method per instruction form, each citing its encoding in
the Intel SDM, volume 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

CONFIG_ADDRESS: Final = 0xCF8
CONFIG_DATA: Final = 0xCFC
#: PIIX3 reset control register; writing bit 2 (reset CPU) requests a system reset.
RESET_CONTROL: Final = 0xCF9
RESET_CPU: Final = 0x06  # bit 2 (reset CPU) with bit 1 (a hard reset), as firmware writes it
SPACE: Final = 256
#: Guest-physical address of the results: conventional RAM, clear of the interrupt
#: table and BIOS data area at the bottom and of the VGA hole at 0xA0000 even for
#: 240 devices with probes (240 * 768 bytes).
RESULTS: Final = 0x10000
#: What the program stores after its last result; RAM starts zeroed, so a program
#: that stopped early (a fault, a reset for another reason) leaves no marker.
DONE: Final = 0x656E6F64  # "done" in guest memory

#: A write step that puts back the dword's value as read before any write.
ORIGINAL: Final = "original"
#: A write probe of one dword, as (value written, read back after?): write all-ones
#: and read back, write zeros and read back, write the original value again. What
#: reads back shows ``wmask`` (and BAR sizes); the last write leaves the register
#: as it was.
PROBE_STEPS: Final[tuple[tuple[int | Literal["original"], bool], ...]] = (
    (0xFFFFFFFF, True),
    (0, True),
    (ORIGINAL, False),
)
PROBE_READS: Final = sum(read for _, read in PROBE_STEPS)


def probe_sequence(offset: int, original: int) -> list[tuple[int | None, bool]]:
    """The guest accesses of a write probe of the dword at ``offset`` whose value
    was ``original``: (value written or None, read?), :data:`PROBE_STEPS` spelt out."""
    return [(original if value == ORIGINAL else value, read) for value, read in PROBE_STEPS]


def config_address(slot: int, function: int, offset: int) -> int:
    """The value for port 0xCF8 that selects a dword of bus 0 (PCI 3.0 §3.2.2.3.2)."""
    return 0x80000000 | (slot << 11) | (function << 8) | offset


# Register numbers as the instruction encodings use them (Intel SDM vol. 2, §2.1.5,
# table 2-2): the same number names AX or EAX, by operand size.
AX, CX, DX, BX, DI = 0, 1, 2, 3, 7
_OPERAND_32 = b"\x66"  # operand-size prefix: a 32-bit operation in a 16-bit code segment
_ES = b"\x26"  # segment override: the memory operand is in ES, not DS
_MODRM_DI_DISP16 = 0b10_000_101  # mod 10, r/m 101: [DI + disp16] (16-bit addressing)


class Assembler:
    """Real-mode machine code, a handful of instruction forms (Intel SDM vol. 2).

    Each method appends one instruction and names it in assembler syntax. Jumps go
    backwards only, to an offset :meth:`here` returned.
    """

    def __init__(self) -> None:
        self.code = bytearray()

    def here(self) -> int:
        return len(self.code)

    def mov_imm16(self, reg: int, value: int) -> None:
        """``mov r16, imm16``: B8+r iw."""
        self.code += bytes([0xB8 + reg]) + value.to_bytes(2, "little")

    def mov_imm32(self, reg: int, value: int) -> None:
        """``mov r32, imm32``: 66 B8+r id."""
        self.code += _OPERAND_32 + bytes([0xB8 + reg]) + value.to_bytes(4, "little")

    def mov_al_imm8(self, value: int) -> None:
        """``mov al, imm8``: B0 ib."""
        self.code += bytes([0xB0, value])

    def mov_es_ax(self) -> None:
        """``mov es, ax``: 8E /r, ES being segment register 0."""
        self.code += b"\x8e\xc0"

    def mov_eax_ebx(self) -> None:
        """``mov eax, ebx``: 66 89 /r (``mov r/m32, r32``), mod 11 reg EBX r/m EAX."""
        self.code += _OPERAND_32 + b"\x89\xd8"

    def store_eax(self, disp: int) -> None:
        """``mov es:[di + disp16], eax``: 26 66 89 /r disp16."""
        self.code += (
            _ES + _OPERAND_32 + bytes([0x89, _MODRM_DI_DISP16]) + disp.to_bytes(2, "little")
        )

    def load_eax(self, disp: int) -> None:
        """``mov eax, es:[di + disp16]``: 26 66 8B /r disp16."""
        self.code += (
            _ES + _OPERAND_32 + bytes([0x8B, _MODRM_DI_DISP16]) + disp.to_bytes(2, "little")
        )

    def add_imm8(self, reg: int, value: int, *, wide: bool = False) -> None:
        """``add r16, imm8`` (83 /0 ib, mod 11), or ``add r32, imm8`` with ``wide``."""
        self.code += (_OPERAND_32 if wide else b"") + bytes([0x83, 0b11_000_000 | reg, value])

    def out_dx_eax(self) -> None:
        """``out dx, eax``: 66 EF."""
        self.code += _OPERAND_32 + b"\xef"

    def out_dx_al(self) -> None:
        """``out dx, al``: EE."""
        self.code += b"\xee"

    def in_eax_dx(self) -> None:
        """``in eax, dx``: 66 ED."""
        self.code += _OPERAND_32 + b"\xed"

    def loop(self, target: int) -> None:
        """``loop rel8``: E2 cb; decrement CX, jump back to ``target`` unless it is 0."""
        self.code += b"\xe2" + _rel8(target - (self.here() + 2))

    def hlt(self) -> None:
        """``hlt``: F4."""
        self.code += b"\xf4"

    def jmp(self, target: int) -> None:
        """``jmp rel8``: EB cb."""
        self.code += b"\xeb" + _rel8(target - (self.here() + 2))

    def jmp_near(self, target: int) -> None:
        """``jmp rel16``: E9 cw; IP wraps around within the 64 KiB segment."""
        self.code += b"\xe9" + ((target - (self.here() + 3)) & 0xFFFF).to_bytes(2, "little")

    def fill_to(self, offset: int) -> None:
        """Pad with ``hlt`` up to ``offset``: a stray jump halts, it runs nothing."""
        if self.here() > offset:
            raise ValueError(f"the code runs {self.here() - offset} bytes past {offset:#x}")
        self.code += b"\xf4" * (offset - self.here())


def _rel8(distance: int) -> bytes:
    if not -128 <= distance <= 127:
        raise ValueError(f"a jump of {distance} bytes does not fit rel8")
    return (distance & 0xFF).to_bytes(1, "little")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the program leaves its results for ``devices`` devices."""

    devices: int
    probe: bool

    @property
    def images(self) -> int:
        """256-byte images per device: the bytes read, and one per probe read."""
        return 1 + (PROBE_READS if self.probe else 0)

    @property
    def block(self) -> int:
        return self.images * SPACE

    def segment(self, index: int) -> int:
        """The real-mode segment whose offset 0 is block ``index`` (the marker's, past
        the last device)."""
        return (RESULTS + index * self.block) >> 4

    @property
    def size(self) -> int:
        """Bytes from :data:`RESULTS` to the end of the done marker."""
        return self.devices * self.block + 4

    def parse(self, dump: bytes) -> tuple[list[bytes], list[tuple[bytes, ...]]] | None:
        """Each device's bytes and probe images from a dump of :attr:`size` bytes at
        :data:`RESULTS`, or None without the done marker (the program did not finish)."""
        marker = dump[self.devices * self.block : self.size]
        if len(dump) != self.size or int.from_bytes(marker, "little") != DONE:
            return None
        blocks = [dump[i * self.block : (i + 1) * self.block] for i in range(self.devices)]
        images = [[b[k * SPACE : (k + 1) * SPACE] for k in range(self.images)] for b in blocks]
        return [i[0] for i in images], [tuple(i[1:]) for i in images]


#: The firmware image is one 64 KiB ROM (the size QEMU wants a ``-bios`` file to be a
#: multiple of) mapped just below 4 GiB; at reset CS's base is 0xFFFF0000, so offset N
#: of the image is CS:N, and the CPU starts at CS:FFF0.
IMAGE_SIZE: Final = 0x10000
RESET_VECTOR: Final = 0xFFF0


def program(functions: Sequence[tuple[int, int]], *, probe: bool) -> bytes:
    """The firmware image that reads (and with ``probe``, write-probes) the devices
    at ``(slot, function)``, in that order, as the module docstring says."""
    layout = Layout(len(functions), probe)
    asm = Assembler()
    for index, (slot, function) in enumerate(functions):
        top = _open_dword_loop(asm, layout.segment(index), config_address(slot, function, 0))
        asm.in_eax_dx()
        asm.store_eax(0)
        _close_dword_loop(asm, top)
    if probe:
        for index, (slot, function) in enumerate(functions):
            top = _open_dword_loop(asm, layout.segment(index), config_address(slot, function, 0))
            next_image = 1
            for value, read in PROBE_STEPS:
                if value == ORIGINAL:
                    asm.load_eax(0)
                else:
                    asm.mov_imm32(AX, value)
                asm.out_dx_eax()
                if read:
                    asm.in_eax_dx()
                    asm.store_eax(next_image * SPACE)
                    next_image += 1
            _close_dword_loop(asm, top)
    asm.mov_imm16(AX, layout.segment(len(functions)))
    asm.mov_es_ax()
    asm.mov_imm16(DI, 0)
    asm.mov_imm32(AX, DONE)
    asm.store_eax(0)
    asm.mov_imm16(DX, RESET_CONTROL)
    asm.mov_al_imm8(RESET_CPU)
    asm.out_dx_al()
    stop = asm.here()
    asm.hlt()  # until the machine stops: interrupts are off from reset on
    asm.jmp(stop)
    asm.fill_to(RESET_VECTOR)
    asm.jmp_near(0)
    asm.fill_to(IMAGE_SIZE)
    return bytes(asm.code)


def _open_dword_loop(asm: Assembler, segment: int, address: int) -> int:
    """Open the loop over a device's 64 dwords, with ES:DI at the dword's results (DI
    its offset), EBX its address for 0xCF8 and CX the dwords left. The body starts
    with the dword selected and DX = 0xCFC; returns where it starts."""
    asm.mov_imm16(AX, segment)
    asm.mov_es_ax()
    asm.mov_imm16(DI, 0)
    asm.mov_imm32(BX, address)
    asm.mov_imm16(CX, SPACE // 4)
    top = asm.here()
    asm.mov_imm16(DX, CONFIG_ADDRESS)
    asm.mov_eax_ebx()
    asm.out_dx_eax()
    asm.mov_imm16(DX, CONFIG_DATA)
    return top


def _close_dword_loop(asm: Assembler, top: int) -> None:
    asm.add_imm8(DI, 4)
    asm.add_imm8(BX, 4, wide=True)
    asm.loop(top)
