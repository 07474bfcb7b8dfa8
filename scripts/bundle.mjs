// bundle.mjs — run by `npm run build` after tsc: bundles the CLI and its two worker threads with esbuild into one
// CommonJS file each (dist/src/cli/bundle.cjs, report-worker.cjs, ext2fs-worker.cjs), puts the command that
// runs the CLI's bundle beside it (src/cli/nearfield.cjs → dist/src/cli/nearfield.cjs, package.json's bin and
// `npm start`), and has it make V8's code cache for the bundle. Start-up is most of a warm command, and per
// loaded file Node's ES module loader resolves, looks up package.json scopes, opens, reads and compiles
// asynchronously; as one CommonJS file the CLI starts ~10 ms sooner than as one ES module and ~40 ms sooner
// than as tsc's 60 files, and ~10 ms more with the code cache.
//
// Input is tsc's output in dist/ (so the generated command index's `./commands/${file}` names match the files
// esbuild's glob import sees). Output sits in dist/src/cli/, the directory of tsc's main.js, so every path the
// code derives from its own location holds unchanged: ../../../native/binding.cjs (the addon), packageRoot(),
// images/. Only the two workers' URLs name other files; they are rewritten to the bundled workers. The addon
// and ext2fs (a WASM module with its own loader) stay external, loaded at run time as before.

import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(dist, 'src', 'cli');

/** The worker URLs the bundled code must see, by the module that creates the worker. */
const workerUrls = [
  { module: /[/\\]dist[/\\]src[/\\]report[/\\]run\.js$/, from: "new URL('./worker.js', import.meta.url)", to: "new URL('./report-worker.cjs', import.meta.url)" },
  { module: /[/\\]dist[/\\]wasm[/\\]client\.js$/, from: "new URL('./worker.js', import.meta.url)", to: "new URL('./ext2fs-worker.cjs', import.meta.url)" },
];

const rewriteWorkerUrls = {
  name: 'worker-urls',
  setup(b) {
    for (const w of workerUrls) {
      b.onLoad({ filter: w.module }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        // Exactly one worker per module; anything else means the source changed and this table must follow.
        if (text.split(w.from).length !== 2) throw new Error(`${args.path}: expected one ${w.from}`);
        return { contents: text.replace(w.from, w.to), loader: 'js', resolveDir: dirname(args.path) };
      });
    }
  },
};

// commander require()s node:child_process (and with it node:net, ~5 ms) when it loads, for executable
// subcommands nearfield does not have: it gets a stand-in that loads the module on first use.
const deferChildProcess = {
  name: 'defer-child-process',
  setup(b) {
    b.onResolve({ filter: /^node:child_process$/ }, (args) =>
      args.kind === 'require-call' && /[/\\]node_modules[/\\]commander[/\\]/.test(args.importer)
        ? { path: args.path, namespace: 'deferred' }
        : { path: args.path, external: true });
    b.onLoad({ filter: /.*/, namespace: 'deferred' }, (args) => ({
      contents: `let m; module.exports = new Proxy({}, { get: (_, key) => (m ??= require(${JSON.stringify(args.path)}))[key] });`,
      loader: 'js',
    }));
  },
};

const result = await build({
  entryPoints: {
    bundle: join(dist, 'src', 'cli', 'main.js'),
    'report-worker': join(dist, 'src', 'report', 'worker.js'),
    'ext2fs-worker': join(dist, 'wasm', 'worker.js'),
  },
  outdir: out,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['ext2fs', '*.node', '*.cjs'],
  // The glob import of ./commands/ also matches tsc's .js.map and .d.ts files beside the modules: empty stubs.
  loader: { '.map': 'empty' },
  // import.meta.url, which the code resolves its neighbours against, is the bundle's own URL.
  define: { 'import.meta.url': '__nearfieldBundleUrl' },
  // "use strict" first: the modules are ES modules, strict, and a directive after the banner would not count.
  banner: { js: "'use strict';\nconst __nearfieldBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  sourcemap: 'linked',
  // Whitespace and comments out (commander's JSDoc is a third of the input): less to scan at every start.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  metafile: true,
  plugins: [rewriteWorkerUrls, deferChildProcess],
});

const sizes = Object.entries(result.metafile.outputs)
  .filter(([f]) => f.endsWith('.cjs'))
  .map(([f, o]) => `${f.split('/').pop()} ${(o.bytes / 1024).toFixed(0)} KiB`);

const command = join(out, 'nearfield.cjs');
copyFileSync(join(root, 'src', 'cli', 'nearfield.cjs'), command);
chmodSync(command, 0o755);

// The code cache: one `--help` run compiles the bundle's top level, commander and every command's set-up.
const cache = join(out, 'bundle.cjs.v8cache');
rmSync(cache, { force: true });
const made = spawnSync(process.execPath, [command, '--help'], { env: { ...process.env, NEARFIELD_CODE_CACHE: 'write' }, stdio: ['ignore', 'ignore', 'pipe'] });
const cached = made.status === 0 ? 'code cache made' : `no code cache (nearfield --help exited ${made.status}: ${made.stderr})`;
process.stdout.write(`bundle: ${sizes.join(', ')}; ${cached}\n`);
