// `nearfield pstree [target]`: the guest's processes as a tree by parent, like pstree -p (one process per line).

import type { TreeNode } from '../../generated/records.js';
import { defineRecordCommand, printable } from '../define.js';

interface PstreeFlags {
  kernel?: boolean;
}

function draw(roots: TreeNode[]): string {
  const lines: string[] = [];
  const walk = (n: TreeNode, prefix: string, branch: string) => {
    lines.push(`${prefix}${branch}${printable(n.comm)}(${n.pid})${n.state === 'Z' ? ' <defunct>' : ''}`);
    const next = prefix + (branch === '' ? '' : branch === '├─' ? '│ ' : '  ');
    n.children.forEach((c, i) => walk(c, next, i === n.children.length - 1 ? '└─' : '├─'));
  };
  for (const r of roots) walk(r, '', '');
  return lines.join('\n') + '\n';
}

export const command = defineRecordCommand({
  name: 'pstree',
  description: 'processes of the guest as a tree by parent pid, like pstree -p',
  flags: (cmd) => cmd.option('--no-kernel', "leave out kernel threads (kthreadd's subtree)"),
  read: async (s, f: PstreeFlags) => (await s.guest()).pstree({ kernelThreads: f.kernel !== false }),
  text: (t) => draw(t.roots),
});
