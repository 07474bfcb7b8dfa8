// The command list: each command lives in its own file and registers itself on the program here.

import type { Command } from 'commander';
import { registerReport } from './report.js';
import { registerSnapshot } from './snapshot.js';
import { registerDf } from './df.js';
import { registerLs } from './ls.js';
import { registerCat } from './cat.js';
import { registerStat } from './stat.js';
import { registerFind } from './find.js';
import { registerInspect } from './inspect.js';
import { registerKernel } from './kernel.js';
import { registerPs } from './ps.js';
import { registerFree } from './free.js';
import { registerMeminfo } from './meminfo.js';
import { registerBuddyinfo } from './buddyinfo.js';
import { registerUptime } from './uptime.js';

export function registerCommands(program: Command): void {
  registerReport(program);
  registerSnapshot(program);
  registerDf(program);
  registerLs(program);
  registerCat(program);
  registerStat(program);
  registerFind(program);
  registerInspect(program);
  registerKernel(program);
  registerPs(program);
  registerFree(program);
  registerMeminfo(program);
  registerBuddyinfo(program);
  registerUptime(program);
}
