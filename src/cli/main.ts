#!/usr/bin/env node
// nearfield CLI entry: commander program; each command is declared in its own file under ./commands and only
// the invoked one is loaded (all of them for help and unknown words), through the generated index.

import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../target.js';
import { commandIndex } from '../generated/commands.js';
import { oneLineUsageErrors, registerCommand, type CommandSpec } from './define.js';
import { handleStdoutErrorsOnUse } from './output.js';

// A reader that goes away (`nearfield ps --jsonl | head`) ends the command quietly.
handleStdoutErrorsOnUse();

const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string; description: string };

const program = new Command()
  .name('nearfield')
  .description('Look inside a running, paused or hung Linux VM from the host: no agent, no symbol package.')
  .version(pkg.version, '-V, --version')
  .exitOverride((err) => {
    // commander's own usage errors exit 2; --help/--version exit 0.
    process.exit(err.exitCode === 0 ? 0 : 2);
  })
  // One document format at a time, whatever the command.
  .hook('preAction', (_program, cmd) => {
    const o = cmd.opts<{ json?: boolean; jsonl?: boolean }>();
    if (o.json && o.jsonl) cmd.error('choose one of --json and --jsonl', { exitCode: 2, code: 'nearfield.usage' });
  });
oneLineUsageErrors(program, '');

// No top-level await: the shipped CLI is a CommonJS bundle (scripts/bundle.mjs), which starts faster than an ES module.
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const word = args.find((a) => !a.startsWith('-'));
  const commands = commandIndex.filter((c) => c.name !== null);
  const invoked = commands.find((c) => word !== undefined && word !== 'help' && (c.name === word || c.aliases.includes(word)));
  // `nearfield --version` needs no command at all.
  const versionOnly = args.length === 1 && (args[0] === '--version' || args[0] === '-V');
  for (const entry of versionOnly ? [] : invoked ? [invoked] : commands) {
    const mod = (await import(`./commands/${entry.file}`)) as { command: CommandSpec };
    registerCommand(program, mod.command);
  }
  await program.parseAsync(process.argv);
}

void main();
