// `nearfield buddyinfo [target]`: free blocks per node, zone and order like /proc/buddyinfo, plus a fragmentation summary.

import type { Command } from 'commander';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { action, printJson } from '../output.js';
import { finish, guestFor } from '../walkers-common.js';

/** mm/vmstat.c frag_show_print(): "Node %d, zone %8s " then "%6lu " per order. */
export function buddyLine(node: number, zone: string, free: number[]): string {
  return `Node ${node}, zone ${zone.padStart(8)} ${free.map((n) => `${String(n).padStart(6)} `).join('')}`;
}

export function registerBuddyinfo(program: Command): void {
  const cmd = program.command('buddyinfo').description('free pages per node, zone and order (the guest\'s /proc/buddyinfo) and how fragmented they are');
  withFormats(withTarget(cmd), false).action(
    action('buddyinfo', async (positional: string | undefined, opts: CommonOptions) => {
      const { guest } = await guestFor(positional, opts);
      const b = guest.buddyinfo();
      const pageKb = b.pageSize / 1024;
      const summary = {
        free_pages: b.freePages,
        free_kb: b.freePages * pageKb,
        largest_order: b.largestOrder ?? null,
        largest_block_kb: b.largestOrder === null || b.largestOrder === undefined ? null : pageKb * 2 ** b.largestOrder,
        high_order: b.highOrder,
        high_order_percent: Math.round(b.highOrderPercent * 100) / 100,
      };
      if (opts.json) {
        printJson({ zones: b.zones, summary });
        return finish([], opts);
      }
      process.stdout.write(b.zones.map((z) => buddyLine(z.node, z.zone, z.free)).join('\n') + '\n');
      const largest = summary.largest_order === null ? 'none' : `order ${summary.largest_order} (${summary.largest_block_kb} kB blocks)`;
      process.stdout.write(
        `\nfree: ${summary.free_pages} pages (${summary.free_kb} kB); largest free block: ${largest}; ` +
          `${summary.high_order_percent.toFixed(1)}% of free memory in blocks of order >= ${b.highOrder} (${pageKb * 2 ** b.highOrder} kB)\n`,
      );
      return finish([], opts);
    }),
  );
}
