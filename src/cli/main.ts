#!/usr/bin/env node
// nearfield CLI entry: commander program with one file per command under ./commands.

import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../target.js';
import { registerCommands } from './commands/index.js';

const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string; description: string };

const program = new Command()
  .name('nearfield')
  .description('Look inside a running, paused or hung Linux VM from the host: no agent, no symbol package.')
  .version(pkg.version, '-V, --version')
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  .exitOverride((err) => {
    // commander's own usage errors exit 2; --help/--version exit 0.
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

await registerCommands(program);

await program.parseAsync(process.argv);
