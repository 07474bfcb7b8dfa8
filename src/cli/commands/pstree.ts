// `nearfield pstree [PID] [target]`: the guest's processes as a tree by parent, drawn the way psmisc pstree
// draws one (first child on its parent's line, siblings sorted by name, identical leaves merged as N*[name]
// unless -p shows pids); kernel threads included unless --no-kernel. Threads are left out (as pstree -T).

import { existsSync } from 'node:fs';
import type { ProcessTree, TreeNode } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand, printable } from '../define.js';

interface PstreeFlags {
  kernel?: boolean;
  showPids?: boolean;
  numericSort?: boolean;
  ascii?: boolean;
  /** The PID argument: draw only that process's subtree. */
  subtree?: number;
}

interface Lines {
  /** Segments joining a parent to its children: one child, first of several, middle, last, continuation. */
  single: string;
  first: string;
  middle: string;
  last: string;
  bar: string;
}

const unicode: Lines = { single: '───', first: '─┬─', middle: '├─', last: '└─', bar: '│' };
const ascii: Lines = { single: '---', first: '-+-', middle: '|-', last: '`-', bar: '|' };

/** A process's label: its name, (pid) with -p, zombies marked as pstree does not (ps does). */
function label(n: TreeNode, f: PstreeFlags): string {
  return `${printable(n.comm)}${f.showPids ? `(${n.pid})` : ''}${n.state === 'Z' ? ' <defunct>' : ''}`;
}

/** The lines of `n`'s subtree, psmisc's layout: the first child continues the parent's line. */
function drawNode(n: TreeNode, f: PstreeFlags, g: Lines, text = label(n, f)): string[] {
  const kids = children(n, f, g);
  if (kids.length === 0) return [text];
  const pad = ' '.repeat(text.length + 1);
  if (kids.length === 1) {
    const [head, ...rest] = kids[0]!;
    return [`${text}${g.single}${head}`, ...rest.map((l) => `${' '.repeat(text.length + g.single.length)}${l}`)];
  }
  const out: string[] = [];
  kids.forEach((lines, i) => {
    const [head, ...rest] = lines;
    const lastChild = i === kids.length - 1;
    if (i === 0) out.push(`${text}${g.first}${head}`);
    else out.push(`${pad}${lastChild ? g.last : g.middle}${head}`);
    for (const l of rest) out.push(`${pad}${lastChild ? '  ' : `${g.bar} `}${l}`);
  });
  return out;
}

/** A node's children drawn, in pstree's order (by name, or by pid with -n); without -p, identical one-line
 *  subtrees are merged into "N*[…]" as pstree merges them. */
function children(n: TreeNode, f: PstreeFlags, g: Lines): string[][] {
  const sorted = [...n.children].sort((a, b) => (f.numericSort ? a.pid - b.pid : a.comm < b.comm ? -1 : a.comm > b.comm ? 1 : a.pid - b.pid));
  const drawn = sorted.map((c) => drawNode(c, f, g));
  if (f.showPids) return drawn;
  const merged: { lines: string[]; count: number }[] = [];
  for (const lines of drawn) {
    const prev = merged[merged.length - 1];
    if (prev && lines.length === 1 && prev.lines.length === 1 && prev.lines[0] === lines[0]) prev.count++;
    else merged.push({ lines, count: 1 });
  }
  return merged.map((m) => (m.count > 1 ? [`${m.count}*[${m.lines[0]}]`] : m.lines));
}

export function drawTree(roots: TreeNode[], f: PstreeFlags): string {
  const g = f.ascii ? ascii : unicode;
  return roots.flatMap((r) => drawNode(r, f, g)).join('\n') + (roots.length ? '\n' : '');
}

/** The subtree of `pid` (pstree PID), or a NOT_FOUND naming it. */
function subtree(t: ProcessTree, pid: number): ProcessTree {
  const find = (nodes: TreeNode[]): TreeNode | undefined => {
    for (const n of nodes) {
      if (n.pid === pid) return n;
      const hit = find(n.children);
      if (hit) return hit;
    }
    return undefined;
  };
  const hit = find(t.roots);
  if (!hit) throw new NearfieldError('NOT_FOUND', `no process ${pid} in the guest`);
  return { ...t, roots: [hit] };
}

export const command = defineRecordCommand({
  name: 'pstree',
  description: 'processes of the guest as a tree by parent, like psmisc pstree (-p for pids, a PID for one subtree)',
  flags: (cmd) =>
    cmd
      .argument('[pid]', 'start at this process (default: every root, pid 1 and kthreadd)')
      .option('-p, --show-pids', 'show each process\'s pid; identical subtrees are then not merged')
      .option('-n, --numeric-sort', 'order siblings by pid instead of by name')
      .option('-A, --ascii', 'draw with ASCII characters')
      .option('--no-kernel', "leave out kernel threads (kthreadd's subtree)"),
  target: (positionals, f: PstreeFlags) => {
    const words = positionals.filter((p): p is string => p !== undefined);
    const pid = words.find((w) => /^\d+$/.test(w) && !existsSync(w));
    if (pid !== undefined) f.subtree = Number(pid);
    const rest = words.filter((w) => w !== pid);
    if (rest.length > 1) throw new NearfieldError('USAGE', `one target, not ${rest.join(' and ')}`);
    return rest[0];
  },
  read: async (s, f: PstreeFlags) => {
    const tree = (await s.guest()).pstree({ kernelThreads: f.kernel !== false });
    return f.subtree === undefined ? tree : subtree(tree, f.subtree);
  },
  text: (t, f: PstreeFlags) => drawTree(t.roots, f),
});
