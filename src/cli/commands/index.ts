// The command list: each command lives in its own file; only the invoked one is loaded (all of them for help), so start-up stays small.

import type { Command } from 'commander';

type Register = (program: Command) => void;

/** Command name (and aliases) → its module's register function, imported on demand. */
const commands: { names: string[]; load: () => Promise<Register> }[] = [
  { names: ['report'], load: async () => (await import('./report.js')).registerReport },
  { names: ['snapshot'], load: async () => (await import('./snapshot.js')).registerSnapshot },
  { names: ['kernel', 'uname'], load: async () => (await import('./kernel.js')).registerKernel },
  { names: ['ps'], load: async () => (await import('./ps.js')).registerPs },
  { names: ['free'], load: async () => (await import('./free.js')).registerFree },
  { names: ['meminfo'], load: async () => (await import('./meminfo.js')).registerMeminfo },
  { names: ['buddyinfo'], load: async () => (await import('./buddyinfo.js')).registerBuddyinfo },
  { names: ['uptime'], load: async () => (await import('./uptime.js')).registerUptime },
  { names: ['dmesg'], load: async () => (await import('./dmesg.js')).registerDmesg },
  { names: ['pstree'], load: async () => (await import('./pstree.js')).registerPstree },
  { names: ['df'], load: async () => (await import('./df.js')).registerDf },
  { names: ['ls'], load: async () => (await import('./ls.js')).registerLs },
  { names: ['cat'], load: async () => (await import('./cat.js')).registerCat },
  { names: ['stat'], load: async () => (await import('./stat.js')).registerStat },
  { names: ['find'], load: async () => (await import('./find.js')).registerFind },
  { names: ['inspect'], load: async () => (await import('./inspect.js')).registerInspect },
  { names: ['convert'], load: async () => (await import('./convert.js')).registerConvert },
];

/** Register the command named in argv (first non-option word), or every command when none is (help, --version, typos). */
export async function registerCommands(program: Command, argv: string[] = process.argv.slice(2)): Promise<void> {
  const word = argv.find((a) => !a.startsWith('-'));
  const invoked = commands.find((c) => word !== undefined && c.names.includes(word));
  const wanted = invoked && word !== 'help' ? [invoked] : commands;
  for (const register of await Promise.all(wanted.map((c) => c.load()))) register(program);
}
