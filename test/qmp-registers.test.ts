// QEMU's `info registers -a` text (target/i386/cpu-dump.c x86_cpu_dump_state) parsed into the registers the
// unwinder needs; the live comparison with an ELF core of the same paused guest is in snapshot-live.test.ts.

import { describe, expect, it } from 'vitest';
import { parseInfoRegisters } from '../src/stacks/qmp-registers.js';

// Long mode, as QEMU 7.2 prints it (HMP output ends lines with \r\n).
const longMode = [
  '',
  'CPU#0',
  'RAX=0000000000000000 RBX=ffffffff82a13940 RCX=0000000000000001 RDX=000000000001a2c5',
  'RSI=0000000000000087 RDI=0000000000000000 RBP=0000000000000000 RSP=ffffffff82a03e90',
  'R8 =ffff88800ea2dc60 R9 =0000000000000000 R10=0000000000000005 R11=0000000000000001',
  'R12=0000000000000000 R13=00000000000000aa R14=0000000000000000 R15=0000000000000000',
  'RIP=ffffffff81f4b1fb RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1',
  'ES =0000 0000000000000000 00000000 00000000',
  'CS =0010 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]',
  'SS =0018 0000000000000000 ffffffff 00c09300 DPL=0 DS   [-WA]',
  'GS =0000 ffff88800ea00000 00000000 00000000',
  'CR0=80050033 CR2=00007f2b6b2b0000 CR3=0000000003a10000 CR4=003506f0',
  '',
  'CPU#1',
  'RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000401568 RDX=0000000000000000',
  'RSI=0000000000000000 RDI=0000000000000000 RBP=00007ffd4b1a0e10 RSP=00007ffd4b1a0e10',
  'R8 =0000000000000000 R9 =0000000000000000 R10=0000000000000000 R11=0000000000000246',
  'R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=0000000000000000',
  'RIP=0000000000401568 RFL=00000202 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=0',
  'CS =0033 0000000000000000 ffffffff 00a0fb00 DPL=3 CS64 [-RA]',
  'GS =0000 0000000000000000 00000000 00000000',
].join('\r\n');

describe('parseInfoRegisters', () => {
  it('reads each CPU#N block: RIP, RSP, RBP, the CS selector, GS base and the registers ORC may need', () => {
    const [c0, c1] = parseInfoRegisters(longMode);
    expect(c0).toEqual({
      index: 0, rip: '0xffffffff81f4b1fb', rsp: '0xffffffff82a03e90', rbp: '0x0000000000000000', cs: '0x0010',
      r10: '0x0000000000000005', r13: '0x00000000000000aa', rdi: '0x0000000000000000', rdx: '0x000000000001a2c5',
      gsBase: '0xffff88800ea00000', kernelGsBase: '',
    });
    expect(c1!.index).toBe(1);
    expect(c1!.cs).toBe('0x0033');
    expect(c1!.rip).toBe('0x0000000000401568');
  });

  it('refuses text without CPU blocks or without the registers a trace starts from', () => {
    expect(() => parseInfoRegisters('unknown command: info registers')).toThrow(/no CPU#N blocks/);
    expect(() => parseInfoRegisters('CPU#0\r\nRAX=0000000000000000\r\n')).toThrow(/lacks RIP, RSP or CS/);
  });
});
