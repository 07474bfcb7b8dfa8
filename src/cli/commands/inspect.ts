// `nearfield inspect [target]`: what is installed on the guest's disk (distro, hostname, kernels, fstab, users), as virt-inspector says it.

import type { GuestFiles } from '../../../wasm/client.js';
import { SCHEMA_VERSION, type Inspection } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { defineCommand } from '../define.js';
import { printJson, printJsonl, writeOut } from '../output.js';
import { fileAction, withGuestFiles } from '../files-common.js';

export type FstabEntry = Inspection['fstab'][number];
export type GuestUser = Inspection['users'][number];

/** os-release(5): KEY=value lines, values optionally quoted with shell-style escapes. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!;
    const q = v[0];
    if ((q === '"' || q === "'") && v.endsWith(q) && v.length >= 2) {
      v = v.slice(1, -1);
      if (q === '"') v = v.replace(/\\([\\$"`])/g, '$1');
    }
    out[m[1]!] = v;
  }
  return out;
}

/** fstab(5): six whitespace-separated fields, comments and blank lines skipped, octal escapes (\040) decoded. */
export function parseFstab(text: string): FstabEntry[] {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: FstabEntry[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const f = t.split(/\s+/);
    if (f.length < 2) continue;
    out.push({
      spec: unescape(f[0]!), file: unescape(f[1]!), vfstype: f[2] ?? 'auto', mntops: f[3] ?? 'defaults',
      freq: Number(f[4] ?? 0) || 0, passno: Number(f[5] ?? 0) || 0,
    });
  }
  return out;
}

/** passwd(5): name:password:uid:gid:gecos:home:shell. */
export function parsePasswd(text: string): GuestUser[] {
  const out: GuestUser[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, uid, gid, gecos: f[4]!, home: f[5]!, shell: f[6]! });
  }
  return out;
}

/** A file's text, or null when it is absent or unreadable (an abort of libext2fs still ends the command). */
async function text(g: GuestFiles, path: string): Promise<string | null> {
  try {
    return (await g.readFile(path)).toString('utf8');
  } catch (e) {
    if (e instanceof NearfieldError && e.message.startsWith('libext2fs')) throw e;
    return null;
  }
}

async function names(g: GuestFiles, path: string): Promise<string[]> {
  try {
    const l = await g.readdir(path, { follow: true, withStat: false });
    return l.entries.map((e) => e.name).filter((n) => n !== '.' && n !== '..').sort();
  } catch (e) {
    if (e instanceof NearfieldError && e.message.startsWith('libext2fs')) throw e;
    return [];
  }
}

export async function inspectGuest(g: GuestFiles): Promise<Inspection> {
  const osText = (await text(g, '/etc/os-release')) ?? (await text(g, '/usr/lib/os-release'));
  const os = osText === null ? null : parseOsRelease(osText);
  const hostname = (await text(g, '/etc/hostname'))?.split('\n')[0]?.trim() || null;
  return {
    schemaVersion: SCHEMA_VERSION,
    filesystem: { label: g.info.label, blockSize: g.info.blockSize, needsRecovery: g.info.needsRecovery, maskedFeatures: g.info.maskedFeatures },
    os: os && {
      name: os.NAME ?? null, versionId: os.VERSION_ID ?? null, prettyName: os.PRETTY_NAME ?? null, id: os.ID ?? null,
      versionCodename: os.VERSION_CODENAME ?? null,
    },
    hostname,
    kernels: {
      boot: (await names(g, '/boot')).filter((n) => n.startsWith('vmlinuz-')),
      modules: await names(g, '/lib/modules'),
    },
    fstab: parseFstab((await text(g, '/etc/fstab')) ?? ''),
    users: parsePasswd((await text(g, '/etc/passwd')) ?? ''),
  };
}

function render(r: Inspection): string {
  const lines: string[] = [];
  lines.push(`OS:        ${r.os?.prettyName ?? r.os?.name ?? 'unknown (no /etc/os-release)'}`);
  if (r.os) lines.push(`           name ${r.os.name ?? '-'}, version ${r.os.versionId ?? '-'}${r.os.versionCodename ? ` (${r.os.versionCodename})` : ''}`);
  lines.push(`Hostname:  ${r.hostname ?? '-'}`);
  lines.push(`Kernels:   ${r.kernels.boot.length ? r.kernels.boot.join(', ') : '- (none in /boot)'}`);
  lines.push(`Modules:   ${r.kernels.modules.length ? r.kernels.modules.join(', ') : '- (nothing in /lib/modules)'}`);
  lines.push(`Filesystem: label ${r.filesystem.label || '-'}, ${r.filesystem.blockSize}-byte blocks${r.filesystem.needsRecovery ? ', journal not replayed' : ''}`);
  lines.push('', 'fstab:');
  if (r.fstab.length === 0) lines.push('  (empty or missing)');
  for (const f of r.fstab) lines.push(`  ${f.spec}  ${f.file}  ${f.vfstype}  ${f.mntops}  ${f.freq} ${f.passno}`);
  lines.push('', 'Users:');
  const w = r.users.reduce((m, u) => Math.max(m, u.name.length), 4);
  for (const u of r.users) lines.push(`  ${u.name.padEnd(w)} ${String(u.uid).padStart(6)} ${String(u.gid).padStart(6)}  ${u.home}  ${u.shell}`);
  return lines.join('\n') + '\n';
}

export const command = defineCommand({
  name: 'inspect',
  description: "what is on the guest's disk: distribution, hostname, kernels, fstab, users (like virt-inspector, no appliance)",
  setup(cmd) {

    withFormats(withTarget(cmd)).action(
      fileAction('inspect', () => undefined, async (positional: string | undefined, opts: CommonOptions & { json?: boolean; jsonl?: boolean }) => {
        await withGuestFiles(positional, opts, async (g) => {
          const r = await inspectGuest(g);
          if (opts.json) printJson(r);
        else if (opts.jsonl) printJsonl([r]);
          else writeOut(render(r));
        });
      }),
    );
  },
});
