// `nearfield pstree [target]`: the guest's processes as a tree by parent, like pstree -p (one process per line).

import type { Command } from 'commander';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { action, printJson } from '../output.js';
import { finish, guestFor, printable } from '../walkers-common.js';

interface PstreeOptions extends CommonOptions {
  kernel?: boolean;
}

interface Node { pid: number; comm: string; state: string; children: Node[] }

export function registerPstree(program: Command): void {
  const cmd = program
    .command('pstree')
    .description('processes of the guest as a tree by parent pid, like pstree -p')
    .option('--no-kernel', 'leave out kernel threads (kthreadd\'s subtree)');
  withFormats(withTarget(cmd), false).action(
    action('pstree', async (positional: string | undefined, opts: PstreeOptions) => {
      const { guest } = await guestFor(positional, opts);
      const list = JSON.parse(guest.tasksJson({ threads: false, cmdline: false })) as { tasks: { pid: number; ppid: number; comm: string; state: string; kernelThread: boolean }[]; warnings: string[] };
      const tasks = list.tasks.filter((t) => opts.kernel !== false || !t.kernelThread);
      const nodes = new Map<number, Node>(tasks.map((t) => [t.pid, { pid: t.pid, comm: t.comm, state: t.state, children: [] }]));
      const roots: Node[] = [];
      for (const t of [...tasks].sort((a, b) => a.pid - b.pid)) {
        const node = nodes.get(t.pid)!;
        const parent = t.ppid !== t.pid ? nodes.get(t.ppid) : undefined;
        (parent ? parent.children : roots).push(node);
      }
      if (opts.json) {
        printJson({ tree: roots, warnings: list.warnings });
        return finish(list.warnings, opts);
      }
      const lines: string[] = [];
      const draw = (n: Node, prefix: string, branch: string) => {
        lines.push(`${prefix}${branch}${printable(n.comm)}(${n.pid})${n.state === 'Z' ? ' <defunct>' : ''}`);
        const next = prefix + (branch === '' ? '' : branch === '├─' ? '│ ' : '  ');
        n.children.forEach((c, i) => draw(c, next, i === n.children.length - 1 ? '└─' : '├─'));
      };
      for (const r of roots) draw(r, '', '');
      process.stdout.write(lines.join('\n') + '\n');
      return finish(list.warnings, opts);
    }),
  );
}
