// `nearfield buddyinfo [target]`: free blocks per node, zone and order like /proc/buddyinfo, plus a fragmentation
// summary; and the report's buddyinfo collector (node_buddyinfo_blocks).

import { defineRecordCommand } from '../define.js';
import { renderTable } from '../output.js';
import { defineCollector } from '../../report/collector.js';
import { percent } from '../../report/units.js';

/** mm/vmstat.c frag_show_print(): "Node %d, zone %8s " then "%6lu " per order. */
export function buddyLine(node: number, zone: string, free: number[]): string {
  return `Node ${node}, zone ${zone.padStart(8)} ${free.map((n) => `${String(n).padStart(6)} `).join('')}`;
}

export const command = defineRecordCommand({
  name: 'buddyinfo',
  description: "free pages per node, zone and order (the guest's /proc/buddyinfo) and how fragmented they are",
  read: async (s) => (await s.guest()).buddyinfo(),
  items: (b) => b.zones,
  text: (b) => {
    const s = b.summary;
    const kb = (bytes: number) => bytes / 1024;
    const largest = s.largestOrder === null ? 'none' : `order ${s.largestOrder} (${kb(s.largestBlockBytes ?? 0)} kB blocks)`;
    return (
      b.zones.map((z) => buddyLine(z.node, z.zone, z.free)).join('\n') + '\n' +
      `\nfree: ${s.freePages} pages (${kb(s.freeBytes)} kB); largest free block: ${largest}; ` +
      `${percent(s.highOrderPercent)} of free memory in blocks of order >= ${s.highOrder} (${kb(b.pageSize * 2 ** s.highOrder)} kB)\n`
    );
  },
});

export const collectors = [
  defineCollector({
    name: 'buddyinfo',
    needs: 'ram',
    order: 30,
    collect: ({ guest, sections }) => {
      sections.buddyinfo = guest!.buddyinfo();
    },
    table: (r) => {
      const b = r.sections.buddyinfo;
      if (!b) return undefined;
      const orders = Math.max(0, ...b.zones.map((z) => z.free.length));
      return {
        title: `free pages (buddy): ${b.summary.freePages} pages, largest free order ${b.summary.largestOrder ?? '-'}, ${percent(b.summary.highOrderPercent)} in ≥2 MiB blocks`,
        body: renderTable(
          ['zone', ...Array.from({ length: orders }, (_, i) => String(i))],
          b.zones.map((z) => [`Node ${z.node}, zone ${z.zone}`, ...z.free.map(String)]),
          [false, ...Array<boolean>(orders).fill(true)],
        ),
      };
    },
    prometheus: (r, m) => {
      const b = r.sections.buddyinfo;
      if (!b) return;
      for (const z of b.zones) {
        z.free.forEach((count, order) => m.gauge('node_buddyinfo_blocks', 'Count of free blocks according to size.', count, { node: String(z.node), zone: z.zone, size: String(order) }));
      }
      m.gauge('nearfield_buddy_free_pages', 'Free pages in the buddy allocator, all zones.', b.summary.freePages);
      m.gauge('nearfield_buddy_largest_free_order', 'Largest order with a free block (fragmentation).', b.summary.largestOrder);
      m.gauge('nearfield_buddy_high_order_free_ratio', 'Share of free memory in blocks of order 9 (2 MiB) or more.', b.summary.highOrderPercent / 100);
    },
    vhostmd: (r, emit) => emit('uint64', 'FreePagesBuddy', r.sections.buddyinfo?.summary.freePages),
  }),
];
