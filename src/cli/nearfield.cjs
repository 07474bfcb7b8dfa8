#!/usr/bin/env node
// nearfield's command (package.json bin): runs the bundled CLI (bundle.cjs beside this file, made by
// scripts/bundle.mjs) from V8's code cache when one was made with it, as Node 22's module.enableCompileCache()
// would. Compiling the 180 KiB bundle and the functions a command calls cost ~10–15 ms of every warm command;
// taking them from the cache costs a few.
//
// The cache comes from the same build step as the bundle (a `--help` run). V8 checks it and refuses one made by
// another Node or V8 version, with other V8 flags, or for a source of another length; then the bundle is
// compiled as usual. NEARFIELD_CODE_CACHE=write (the build's own run) writes it when the command ends.
'use strict';

const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const Module = require('node:module');
const vm = require('node:vm');

const bundle = join(__dirname, 'bundle.cjs');
const cacheFile = `${bundle}.v8cache`;

const text = readFileSync(bundle, 'utf8');
// CommonJS's wrapper, put where the bundle's #! line was so every line keeps its number in stack traces.
const body = text.startsWith('#!') ? text.slice(text.indexOf('\n')) : `\n${text}`;
const source = `(function (exports, require, module, __filename, __dirname) {${body}\n})`;

let cachedData;
if (process.env.NEARFIELD_CODE_CACHE !== 'write') {
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // no cache: compile
  }
}
const script = new vm.Script(source, {
  filename: bundle,
  cachedData,
  // import() in the bundle (of images/unpack-sample.mjs) goes to Node's own ES module loader.
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
const wrapper = script.runInThisContext();

const main = new Module(bundle, null);
main.filename = bundle;
main.paths = Module._nodeModulePaths(__dirname);
main.loaded = true;

if (process.env.NEARFIELD_CODE_CACHE === 'write') {
  // After the command ran, so the functions it compiled are in the cache too.
  process.on('exit', () => {
    const tmp = `${cacheFile}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch (e) {
      process.stderr.write(`nearfield: no code cache written: ${e.message}\n`);
    }
  });
}

wrapper.call(main.exports, main.exports, Module.createRequire(bundle), main, bundle, __dirname);
