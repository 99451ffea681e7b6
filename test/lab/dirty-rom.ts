/**
 * A tiny guest that keeps dirtying its memory, for non-converging live migrations.
 *
 * It is an x86 option ROM: QEMU hands it to SeaBIOS (`-option-rom FILE`), SeaBIOS runs it during POST,
 * and it never returns. It switches to "unreal" mode (flat 4 GiB data segment, still real mode),
 * then loops forever over a region of guest RAM, incrementing one dword per 4 KiB page and spinning
 * `delayLoops` times between pages. No disk, no kernel, no network: it migrates like the other lab
 * guests, but every pre-copy pass finds the region dirty again.
 *
 * The bytes below were assembled with GNU as (`.code16`) and checked with objdump:
 *
 *   00  55 aa 01             ROM signature, size = 1 x 512 bytes
 *   03  fa fc                cli; cld
 *   05  b8 00 10 8e d8       mov ax,0x1000; mov ds,ax          ; GDT at linear 0x10000
 *   0a  66 c7 06 00 00 ..    movl [0],0 ; movl [4],0           ; null descriptor
 *   1c  66 c7 06 08 00 ..    movl [8],0xffff ; movl [12],0x8f9200  ; flat data, 4 GiB
 *   2e  c7 06 10 00 0f 00    movw [16],15                      ; GDTR limit
 *   34  66 c7 06 12 00 ..    movl [18],0x10000                 ; GDTR base
 *   3d  66 0f 01 16 10 00    lgdtl [16]
 *   43  0f 20 c0 0c 01 0f 22 c0   cr0 |= PE
 *   4b  bb 08 00 8e c3       mov bx,8; mov es,bx               ; ES limit = 4 GiB
 *   50  24 fe 0f 22 c0       cr0 &= ~PE                        ; back to real mode, "unreal" ES
 *   55  31 db 8e c3          xor bx,bx; mov es,bx
 *   59  66 bf START          outer: mov edi,START
 *   5f  26 67 66 ff 07       page:  inc dword es:[edi]
 *   64  66 b9 DELAY          mov ecx,DELAY
 *   6a  67 e2 fd             spin:  loop spin (ecx)
 *   6d  66 81 c7 00 10 00 00 add edi,4096
 *   74  66 81 ff END         cmp edi,END
 *   7b  72 e2                jb page
 *   7d  eb da                jmp outer
 */
const CODE = Buffer.from(
  '55aa01fafcb800108ed866c706000000000000' +
    '66c706040000000000' +
    '66c7060800ffff0000' +
    '66c7060c000092' +
    '8f00' +
    'c70610000f00' +
    '66c70612000000010066' +
    '0f0116100' +
    '00f20c00c010f22c0bb08008ec324fe0f22c031db8ec3' +
    '66bf00002000' +
    '266766ff07' +
    '66b978563412' +
    '67e2fd' +
    '6681c700100000' +
    '6681ff00002002' +
    '72e2' +
    'ebda',
  'hex',
);

const ROM_BYTES = 512;
const START_OFFSET = 0x5b;
const DELAY_OFFSET = 0x66;
const END_OFFSET = 0x77;
const PAGE_BYTES = 4096;
const MIB = 1024 * 1024;

export interface DirtyRomOptions {
  /** First byte of the dirtied region (guest-physical), MiB; above 1 MiB, below the guest's RAM. */
  readonly regionStartMiB: number;
  readonly regionMiB: number;
  /** Spin iterations between two pages: 1 = as fast as the vCPU goes; more = slower, throttle-sensitive. */
  readonly delayLoops: number;
}

export function dirtyRom(options: DirtyRomOptions): Buffer {
  if (options.regionStartMiB < 2) throw new Error('dirty ROM: the region must start at 2 MiB or above (low memory holds the GDT and BIOS data)');
  if (!Number.isInteger(options.delayLoops) || options.delayLoops < 1) throw new Error('dirty ROM: delayLoops must be an integer >= 1 (0 would spin 2^32 times)');
  const rom = Buffer.alloc(ROM_BYTES);
  CODE.copy(rom);
  const start = options.regionStartMiB * MIB;
  rom.writeUInt32LE(start, START_OFFSET);
  rom.writeUInt32LE(options.delayLoops, DELAY_OFFSET);
  rom.writeUInt32LE(start + options.regionMiB * MIB - PAGE_BYTES + 1, END_OFFSET);
  let sum = 0;
  for (let i = 0; i < ROM_BYTES - 1; i++) sum = (sum + (rom[i] ?? 0)) & 0xff;
  rom[ROM_BYTES - 1] = (0x100 - sum) & 0xff;
  return rom;
}
