// vCPU registers of a paused QEMU guest from its monitor: QMP `human-monitor-command` "info registers -a"
// (QEMU target/i386/cpu-dump.c x86_cpu_dump_state prints them), for tasks that were running when the VM paused.

import { QmpClient } from '../snapshot/qmp.js';
import { NearfieldError } from '../errors.js';
import type { VcpuRegisterText } from '../generated/records.js';

/** The registers the unwinder needs from each "CPU#N" block: GPRs as `RAX=…`, segments as `CS =sel base …`. */
export function parseInfoRegisters(text: string): VcpuRegisterText[] {
  const out: VcpuRegisterText[] = [];
  const blocks = text.split(/^CPU#(\d+)\s*$/m);
  // split with a capture group: [before, index, body, index, body, …]
  for (let i = 1; i + 1 < blocks.length; i += 2) {
    const index = Number(blocks[i]);
    const body = blocks[i + 1] ?? '';
    const gpr = (name: string): string => {
      const m = new RegExp(`(?:^|\\s)${name}\\s*=([0-9a-fA-F]{8,16})\\b`, 'm').exec(body);
      return m ? `0x${m[1]!.toLowerCase()}` : '';
    };
    const segment = (name: string): { selector: string; base: string } | undefined => {
      const m = new RegExp(`^${name}\\s*=([0-9a-fA-F]{4}) ([0-9a-fA-F]{8,16})`, 'm').exec(body);
      return m ? { selector: `0x${m[1]!.toLowerCase()}`, base: `0x${m[2]!.toLowerCase()}` } : undefined;
    };
    const cs = segment('CS');
    const gs = segment('GS');
    const regs: VcpuRegisterText = {
      index,
      rip: gpr('RIP'),
      rsp: gpr('RSP'),
      rbp: gpr('RBP'),
      cs: cs?.selector ?? '',
      r10: gpr('R10'),
      r13: gpr('R13'),
      rdi: gpr('RDI'),
      rdx: gpr('RDX'),
      gsBase: gs?.base ?? '',
      kernelGsBase: '',
    };
    if (!Number.isInteger(index) || !regs.rip || !regs.rsp || !regs.cs) {
      throw new NearfieldError('BAD_DATA', `"info registers" block CPU#${blocks[i]} lacks RIP, RSP or CS (is this an x86-64 guest?)`);
    }
    out.push(regs);
  }
  if (out.length === 0) throw new NearfieldError('BAD_DATA', '"info registers -a" printed no CPU#N blocks');
  return out;
}

/** Ask the monitor at `socket` for every vCPU's registers. The VM should be paused (QMP `stop`): a running
 *  vCPU's registers are stale as soon as they are printed. */
export async function readVcpuRegisters(socket: string): Promise<VcpuRegisterText[]> {
  const qmp = await QmpClient.connect(socket);
  try {
    const status = (await qmp.execute('query-status')) as { running?: boolean; status?: string };
    if (status.running) {
      throw new NearfieldError('USAGE', 'the VM is running: its registers and RAM move while we read them; pause it first (QMP stop)', socket);
    }
    const text = await qmp.execute('human-monitor-command', { 'command-line': 'info registers -a' });
    if (typeof text !== 'string') throw new NearfieldError('BAD_DATA', '"info registers -a" did not return text', socket);
    return parseInfoRegisters(text);
  } finally {
    qmp.close();
  }
}
