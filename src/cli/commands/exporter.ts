// `nearfield exporter`: a long-running Prometheus exporter (and Graphite feeder) over many VMs, each opened once with
// its kernel profile resident; /metrics collects every VM on each scrape with node_exporter's (and, for the host
// tier, the libvirt exporter's) metric names and a `vm` label; /healthz; SIGHUP rescans; SIGTERM stops gracefully.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { NearfieldError } from '../../errors.js';
import { defineCommand } from '../define.js';
import { action } from '../output.js';
import { loadCollectors } from '../../report/collectors.js';
import { renderPrometheus } from '../../report/render/prometheus.js';
import { GraphiteClient, parseHostPort, renderGraphite } from '../../report/render/graphite.js';
import { Exporter, loadSpecs, type VmSources } from '../../exporter/exporter.js';

interface ExporterFlags {
  listen?: string;
  vm: string[];
  config?: string;
  dir?: string;
  graphite?: string;
  graphiteTags?: boolean;
  interval: string;
  top: string;
  cache?: boolean;
  instance?: string;
}

/** "10s", "500ms", "2m", or plain seconds. */
export function parseInterval(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000) : NaN;
  if (!(ms >= 100 && ms <= 86_400_000)) throw new NearfieldError('USAGE', `--interval takes a duration from 100ms to 24h (e.g. 10s), not "${text}"`);
  return ms;
}

const collect = (v: string, all: string[]) => [...all, v];

export const command = defineCommand({
  name: 'exporter',
  description: 'long-running Prometheus exporter (and Graphite feeder) over many VMs, each opened once',
  setup(cmd) {
    cmd
      .option('--listen <addr>', 'serve /metrics and /healthz on HOST:PORT (e.g. 127.0.0.1:9177)')
      .option('--vm <name=target>', 'a VM: NAME=DIR (snapshot directory), NAME=qmp:SOCKET or NAME=pid:PID (repeatable)', collect, [])
      .option('--config <file>', 'VMs from a file: one NAME=TARGET per line, # comments (re-read on SIGHUP)')
      .option('--dir <dir>', 'every snapshot directory and QMP socket in DIR is a VM named after it (rescanned on SIGHUP)')
      .option('--graphite <host:port>', 'also send every VM\'s metrics to Graphite (plaintext protocol) every --interval')
      .option('--graphite-tags', 'Graphite 1.1 tags for labels instead of path components')
      .option('--interval <duration>', 'how often to send to Graphite', '10s')
      .option('--instance <name>', 'set the instance label')
      .option('--top <n>', 'processes in each top list', '5')
      .option('--no-cache', 'do not use or write the kernel profile cache')
      .action(action('exporter', async (flags: ExporterFlags) => {
        if (!flags.listen && !flags.graphite) throw new NearfieldError('USAGE', 'say where metrics go: --listen HOST:PORT and/or --graphite HOST:PORT');
        const sources: VmSources = { vm: flags.vm, config: flags.config, dir: flags.dir };
        if (sources.vm.length === 0 && !sources.config && !sources.dir) throw new NearfieldError('USAGE', 'give the VMs: --vm NAME=TARGET, --config FILE or --dir DIR');
        const listen = flags.listen ? hostPort(flags.listen, '--listen') : undefined;
        const graphiteAt = flags.graphite ? hostPort(flags.graphite, '--graphite') : undefined;
        const interval = parseInterval(flags.interval);
        const log = (line: string) => process.stderr.write(`nearfield exporter: ${line}\n`);

        const collectors = await loadCollectors();
        const exporter = new Exporter(collectors, { top: Number(flags.top) || 5, cache: flags.cache, log });
        const first = exporter.setVms(loadSpecs(sources));
        log(`${first.added.length} VM(s): ${first.added.join(', ')}`);

        let graphite: GraphiteClient | undefined;
        let graphiteTimer: NodeJS.Timeout | undefined;
        if (graphiteAt) {
          graphite = new GraphiteClient(graphiteAt.host, graphiteAt.port, { onEvent: log });
          const push = async () => {
            const reports = await exporter.collectAll();
            const lines = renderGraphite(reports, collectors, { tags: flags.graphiteTags });
            lines.push(`nearfield.exporter.graphite.dropped_lines ${graphite!.dropped} ${Math.floor(Date.now() / 1000)}`);
            graphite!.send(lines);
          };
          graphiteTimer = setInterval(() => void push(), interval);
          void push();
        }

        let server: ReturnType<typeof createServer> | undefined;
        if (listen) {
          server = createServer((req: IncomingMessage, res: ServerResponse) => {
            const url = (req.url ?? '/').split('?')[0];
            if (req.method !== 'GET' && req.method !== 'HEAD') {
              res.writeHead(405, { Allow: 'GET, HEAD' }).end();
            } else if (url === '/metrics') {
              exporter.collectAll().then((reports) => {
                let text = renderPrometheus(reports, collectors, { instance: flags.instance });
                if (graphite) {
                  text += '# HELP nearfield_graphite_dropped_lines_total Graphite lines dropped because the buffer was full (oldest first).\n';
                  text += `# TYPE nearfield_graphite_dropped_lines_total counter\nnearfield_graphite_dropped_lines_total ${graphite.dropped}\n`;
                }
                res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : text);
              }, (e: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${e.message}\n`));
            } else if (url === '/healthz') {
              const vms = [...exporter.vms.values()].map((v) => ({ vm: v.name, status: v.status, error: v.lastError ?? null, rediscoveries: v.rediscoveries }));
              res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'ok', vms }) + '\n');
            } else if (url === '/') {
              res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body><a href="/metrics">/metrics</a> <a href="/healthz">/healthz</a></body></html>\n');
            } else res.writeHead(404).end();
          });
          await new Promise<void>((resolve, reject) => {
            server!.once('error', (e: NodeJS.ErrnoException) => reject(new NearfieldError('IO', `cannot listen on ${flags.listen}: ${e.code ?? e.message}`)));
            server!.listen(listen.port, listen.host, () => resolve());
          });
          const a = server.address();
          log(`listening on http://${typeof a === 'object' && a ? `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` : flags.listen}/metrics`);
        }

        process.on('SIGHUP', () => {
          try {
            const { added, removed } = exporter.setVms(loadSpecs(sources));
            log(`SIGHUP: rescanned; ${added.length} added${added.length ? ` (${added.join(', ')})` : ''}, ${removed.length} removed${removed.length ? ` (${removed.join(', ')})` : ''}`);
          } catch (e) {
            log(`SIGHUP: the VM list was not changed: ${(e as Error).message}`);
          }
        });
        await new Promise<void>((resolve) => {
          const stop = (sig: string) => {
            log(`${sig}: shutting down`);
            if (graphiteTimer) clearInterval(graphiteTimer);
            server?.close();
            server?.closeAllConnections?.();
            exporter.idle().finally(async () => {
              // the in-flight scrape (if any) has ended; last Graphite lines out, then every VM closed
              await graphite?.flush(3000).catch(() => undefined);
              graphite?.close();
              exporter.close();
              resolve();
            });
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
        return 0;
      }));
  },
});

function hostPort(spec: string, flag: string): { host: string; port: number } {
  try {
    return parseHostPort(spec, flag);
  } catch (e) {
    throw new NearfieldError('USAGE', (e as Error).message);
  }
}
