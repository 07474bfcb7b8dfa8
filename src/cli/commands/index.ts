// The command list: each command lives in its own file and registers itself on the program here.

import type { Command } from 'commander';
import { registerSnapshot } from './snapshot.js';

export function registerCommands(program: Command): void {
  registerSnapshot(program);
}
