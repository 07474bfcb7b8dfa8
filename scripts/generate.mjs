// generate.mjs — run by `npm run build` after the native addon is built: writes every JSON Schema nearfield
// ships (src/schema/) and the TypeScript types generated from them (src/generated/), and the CLI's command
// index. Record shapes are defined once: in Rust (walkers, disk records; from the addon's schema catalog) or,
// for documents the TypeScript side assembles, in the hand-written schemas src/schema/src/*.schema.json.
// `node scripts/generate.mjs --check` fails when a committed generated file is out of date.

import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const check = process.argv.includes('--check');
const SCHEMA_BASE = 'https://nearfield.invalid/schema/';

const native = require(join(root, 'native', 'binding.cjs'));
const catalog = JSON.parse(native.schemaCatalog());
const version = catalog.schemaVersion;

// ---------------------------------------------------------------- schemas

/** All schemas to ship, by file stem: Rust records first, then the hand-written documents. */
const schemas = new Map();
const walkerTypes = []; // { name, options, record }
for (const w of catalog.walkers) {
  schemas.set(w.name, { ...w.record, $id: `${SCHEMA_BASE}${w.name}.schema.json`, $comment: `Generated from the Rust record of walker "${w.name}" (native/src/walkers/). ${w.about}` });
  walkerTypes.push({ name: w.name, about: w.about, options: w.options, record: w.record });
}
const diskTypes = [];
for (const d of catalog.disk) {
  schemas.set(d.name, { ...d.record, $id: `${SCHEMA_BASE}${d.name}.schema.json`, $comment: `Generated from the Rust disk record "${d.name}" (native/src/disk/records.rs). ${d.about}` });
  diskTypes.push(d);
}

const srcDir = join(root, 'src', 'schema', 'src');
const documents = [];
/** Shared shapes ($defs only) that documents refer to, shipped beside them as NAME.defs.json. */
const defsFiles = new Map();
for (const f of readdirSync(srcDir).filter((f) => f.endsWith('.json')).sort()) {
  const s = JSON.parse(readFileSync(join(srcDir, f), 'utf8'));
  if (f.endsWith('.defs.json')) {
    defsFiles.set(f, { ...s, $id: `${SCHEMA_BASE}${f}` });
    continue;
  }
  const name = f.replace(/\.schema\.json$/, '');
  if (s.properties?.schemaVersion?.const !== version) throw new Error(`${f}: properties.schemaVersion.const must be ${version}`);
  schemas.set(name, { ...s, $id: `${SCHEMA_BASE}${name}.schema.json` });
  documents.push({ name, schema: s });
}

// The report: one VM's envelope (src/schema/src/report-vm.schema.json) whose `sections` hold walker records.
const vm = schemas.get('report-vm');
if (!vm) throw new Error('src/schema/src/report-vm.schema.json is missing');
const sections = { type: 'object', description: 'What each collector read, by the walker it ran; absent when the collector does not apply or failed (see errors).', additionalProperties: false, properties: {} };
for (const w of [...walkerTypes, ...diskTypes]) sections.properties[w.name] = { $ref: `${w.name}.schema.json` };
// The host tier is read by the TypeScript side (src/host/vmm.ts), not by a walker.
sections.properties.host = { $ref: 'host.defs.json#/$defs/HostTier' };
vm.properties.sections = sections;

// ---------------------------------------------------------------- TypeScript from JSON Schema

const named = new Map(); // type name → TS declaration text
const docComment = (text, indent = '') => {
  if (!text) return '';
  const lines = String(text).trim().split('\n').map((l) => l.trim());
  return lines.length === 1 ? `${indent}/** ${lines[0]} */\n` : `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join('\n')}\n${indent} */\n`;
};
const typeName = (s) => s.replace(/[^A-Za-z0-9_]/g, '_');
/** The TS name of a schema file's root type (its title, else a PascalCase of the file stem). */
const rootName = (stem) => {
  const s = schemas.get(stem);
  return typeName(s?.title ?? stem.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase()));
};

function tsOf(s, ctx, indent) {
  if (s === true || s === undefined || (typeof s === 'object' && Object.keys(s).length === 0)) return 'unknown';
  if (s.$ref) {
    const ref = s.$ref;
    if (ref.startsWith('#/$defs/')) return typeName(ref.slice(8));
    const m = /^([\w-]+)\.(?:schema|defs)\.json(?:#\/\$defs\/(\w+))?$/.exec(ref);
    if (m) return m[2] ? typeName(m[2]) : rootName(m[1]);
    throw new Error(`${ctx}: unsupported $ref ${ref}`);
  }
  if ('const' in s) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  for (const k of ['anyOf', 'oneOf']) {
    if (s[k]) return [...new Set(s[k].map((x) => tsOf(x, ctx, indent)))].join(' | ');
  }
  if (Array.isArray(s.type)) return s.type.map((t) => tsOf({ ...s, type: t }, ctx, indent)).join(' | ');
  switch (s.type) {
    case 'null': return 'null';
    case 'boolean': return 'boolean';
    case 'integer': case 'number': return 'number';
    case 'string': return 'string';
    case 'array':
      if (s.prefixItems) return `[${s.prefixItems.map((x) => tsOf(x, ctx, indent)).join(', ')}]`;
      return `${wrap(tsOf(s.items, ctx, indent))}[]`;
    case 'object': {
      if (!s.properties) {
        if (s.additionalProperties === false) return 'Record<string, never>';
        return `Record<string, ${s.additionalProperties ? tsOf(s.additionalProperties, ctx, indent) : 'unknown'}>`;
      }
      return objectBody(s, ctx, indent);
    }
  }
  throw new Error(`${ctx}: cannot type ${JSON.stringify(s).slice(0, 120)}`);
}
const wrap = (t) => (/[|&]/.test(t) ? `(${t})` : t);

function objectBody(s, ctx, indent) {
  const req = new Set(s.required ?? []);
  const inner = indent + '  ';
  const lines = Object.entries(s.properties).map(([k, v]) => {
    const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k);
    return `${docComment(v.description, inner)}${inner}${key}${req.has(k) ? '' : '?'}: ${tsOf(v, `${ctx}.${k}`, inner)};`;
  });
  return `{\n${lines.join('\n')}\n${indent}}`;
}

function declare(name, s, ctx) {
  const text = s.type === 'object' && s.properties
    ? `${docComment(s.description)}export interface ${name} ${objectBody(s, ctx, '')}`
    : `${docComment(s.description)}export type ${name} = ${tsOf(s, ctx, '')};`;
  const prev = named.get(name);
  if (prev !== undefined && prev !== text) throw new Error(`two different types are named ${name} (${ctx}); rename one in Rust or the schema`);
  named.set(name, text);
}

function declareSchema(stem, s, name) {
  for (const [d, def] of Object.entries(s.$defs ?? {})) declare(typeName(d), def, `${stem}#${d}`);
  const { $defs, $schema, $id, $comment, title, ...body } = s;
  void $defs; void $schema; void $id; void $comment; void title;
  declare(name, body, stem);
}

for (const w of walkerTypes) {
  declareSchema(w.name, w.record, rootName(w.name));
  declareSchema(`${w.name}-options`, w.options, typeName(w.options.title ?? `${w.name}Options`));
}
for (const d of diskTypes) declareSchema(d.name, d.record, rootName(d.name));
for (const [f, s] of defsFiles) for (const [d, def] of Object.entries(s.$defs ?? {})) declare(typeName(d), def, `${f}#${d}`);
for (const d of documents) declareSchema(d.name, schemas.get(d.name), rootName(d.name));

const header = (what) => `// Generated by scripts/generate.mjs from ${what}: do not edit. \`npm run build\` regenerates it.\n\n`;
let ts = header('the JSON Schemas in src/schema/ (Rust records and the hand-written documents)');
ts += `/** Version of every JSON document's shape (README "JSON output"). */\nexport const SCHEMA_VERSION = ${version} as const;\n\n`;
ts += [...named.values()].join('\n\n') + '\n\n';
ts += '/** Every walker of the native core: its options and its record. */\nexport interface Walkers {\n';
for (const w of walkerTypes) ts += `${docComment(w.about, '  ')}  ${w.name}: { options: ${typeName(w.options.title ?? `${w.name}Options`)}; record: ${rootName(w.name)} };\n`;
ts += '}\n\nexport type WalkerName = keyof Walkers;\n\n';
ts += `export const walkerNames = [${walkerTypes.map((w) => `'${w.name}'`).join(', ')}] as const satisfies readonly WalkerName[];\n\n`;
ts += '/** The disk records: what DiskImage gives. */\nexport interface DiskRecords {\n';
for (const d of diskTypes) ts += `${docComment(d.about, '  ')}  ${d.name}: ${rootName(d.name)};\n`;
ts += '}\n';

// ---------------------------------------------------------------- the CLI's command index

/** Each file in src/cli/commands/ declares `export const command = defineCommand({ name: '…', aliases: […], … })`
 *  and optionally `export const collectors = […]`; the index lets the CLI load only the invoked one. */
function commandIndex() {
  const ts = require('typescript');
  const dir = join(root, 'src', 'cli', 'commands');
  const out = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts')).sort()) {
    const text = readFileSync(join(dir, f), 'utf8');
    const sf = ts.createSourceFile(f, text, ts.ScriptTarget.Latest, true);
    let entry = null;
    let collectors = false;
    for (const st of sf.statements) {
      if (!ts.isVariableStatement(st) || !st.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
      for (const d of st.declarationList.declarations) {
        const id = d.name.getText(sf);
        if (id === 'collectors') collectors = true;
        if (id !== 'command' || !d.initializer || !ts.isCallExpression(d.initializer)) continue;
        const arg = d.initializer.arguments[0];
        if (!arg || !ts.isObjectLiteralExpression(arg)) throw new Error(`${f}: defineCommand takes an object literal`);
        const prop = (n) => arg.properties.find((p) => ts.isPropertyAssignment(p) && p.name.getText(sf) === n)?.initializer;
        const name = prop('name');
        if (!name || !ts.isStringLiteral(name)) throw new Error(`${f}: the command's name must be a string literal`);
        const aliases = prop('aliases');
        entry = {
          name: name.text,
          aliases: aliases && ts.isArrayLiteralExpression(aliases) ? aliases.elements.map((e) => (ts.isStringLiteral(e) ? e.text : '')).filter(Boolean) : [],
        };
      }
    }
    if (!entry && !collectors) continue;
    out.push({ file: f.replace(/\.ts$/, '.js'), ...(entry ?? { name: null, aliases: [] }), collectors });
  }
  return out;
}
const index = commandIndex();
let idx = header('the declarations in src/cli/commands/');
idx += '/** One entry per file in src/cli/commands/: the command it declares (if any) and whether it declares report collectors. */\n';
idx += 'export const commandIndex: readonly { file: string; name: string | null; aliases: readonly string[]; collectors: boolean }[] = [\n';
for (const e of index) idx += `  { file: '${e.file}', name: ${e.name === null ? 'null' : `'${e.name}'`}, aliases: [${e.aliases.map((a) => `'${a}'`).join(', ')}], collectors: ${e.collectors} },\n`;
idx += '];\n';

// ---------------------------------------------------------------- write (or check)

const outputs = new Map();
for (const [stem, s] of schemas) {
  const { $schema, $id, $comment, ...rest } = s;
  outputs.set(join('src', 'schema', `${stem}.schema.json`), JSON.stringify({ $schema: $schema ?? 'https://json-schema.org/draft/2020-12/schema', $id, ...($comment ? { $comment } : {}), ...rest }, null, 2) + '\n');
}
for (const [f, s] of defsFiles) {
  const { $schema, $id, $comment, ...rest } = s;
  outputs.set(join('src', 'schema', f), JSON.stringify({ $schema: $schema ?? 'https://json-schema.org/draft/2020-12/schema', $id, ...($comment ? { $comment } : {}), ...rest }, null, 2) + '\n');
}
outputs.set(join('src', 'generated', 'records.ts'), ts);
outputs.set(join('src', 'generated', 'commands.ts'), idx);

let stale = [];
for (const [rel, text] of outputs) {
  const file = join(root, rel);
  const old = existsSync(file) ? readFileSync(file, 'utf8') : null;
  if (old === text) continue;
  if (check) stale.push(rel);
  else {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
}
if (check && stale.length) {
  process.stderr.write(`generate: out of date (run npm run build and commit): ${stale.join(', ')}\n`);
  process.exit(1);
}
if (!check) process.stderr.write(`generate: ${schemas.size} schemas, ${named.size} types, ${index.length} command files\n`);
