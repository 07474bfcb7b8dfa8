// What `report` runs: every collector declared in src/cli/commands/ (`export const collectors`), found through the
// generated command index so only the files that declare collectors are loaded.

import { commandIndex } from '../generated/commands.js';
import type { Collector } from './collector.js';

export type { Collector } from './collector.js';

/** Every declared collector, in order (loads only the command files that declare some). */
export async function loadCollectors(): Promise<Collector[]> {
  const out: Collector[] = [];
  for (const entry of commandIndex.filter((e) => e.collectors)) {
    const mod = (await import(`../cli/commands/${entry.file}`)) as { collectors?: Collector[] };
    out.push(...(mod.collectors ?? []));
  }
  return out.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
}
