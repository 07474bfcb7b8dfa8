// `nearfield meminfo [target]`: every /proc/meminfo field, computed from the guest's RAM as fs/proc/meminfo.c does.

import { defineRecordCommand } from '../define.js';

/** "Name:   value kB" with /proc's widths: name padded to 16 columns, value right-aligned in 8. */
export function meminfoLine(name: string, value: number, unit: string): string {
  const label = `${name}:`.padEnd(16);
  return unit ? `${label}${String(value).padStart(8)} ${unit}` : `${label}${String(value).padStart(8)}`;
}

export const command = defineRecordCommand({
  name: 'meminfo',
  description: "the guest's /proc/meminfo, computed from its RAM the way its kernel computes it",
  read: async (s) => (await s.guest()).meminfo(),
  items: (m) => m.fields,
  text: (m) => m.fields.map((f) => meminfoLine(f.name, f.value, f.unit)).join('\n') + '\n',
});
