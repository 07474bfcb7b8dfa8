// `npm run bench [-- NAME… --peers]`: runs each area's benchmark (files in bench/ that export bench* functions)
// and prints medians; NAMEs pick benchmarks by name, --peers adds drgn and Volatility 3 (bench/peers.ts).

import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { samplePaths } from '../src/target.js';

const here = dirname(fileURLToPath(import.meta.url));
// Words choose benchmarks by name; flags (--peers) are for the benchmarks themselves.
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));

const files = readdirSync(here).filter((f) => f.endsWith('.js') && f !== 'run.js' && f !== 'util.js').sort();
let failures = 0;
for (const file of files) {
  const mod = (await import(pathToFileURL(join(here, file)).href)) as Record<string, unknown>;
  for (const [name, fn] of Object.entries(mod)) {
    if (!name.startsWith('bench') || typeof fn !== 'function') continue;
    if (only.length > 0 && !only.some((o) => name.toLowerCase().includes(o.toLowerCase()))) continue;
    process.stdout.write(`\n## ${name} (${file.replace(/\.js$/, '.ts')})\n`);
    try {
      await (fn as (sample: typeof samplePaths) => Promise<void>)(samplePaths);
    } catch (e) {
      failures++;
      process.stdout.write(`FAILED: ${(e as Error).message}\n`);
    }
  }
}
process.exitCode = failures > 0 ? 1 : 0;
