// QEMU Machine Protocol client (QEMU docs/interop/qmp-spec): line-delimited JSON over a unix socket.

import { createConnection, type Socket } from 'node:net';
import { NearfieldError } from '../errors.js';

/** A minimal QMP session: greeting, qmp_capabilities, then one command at a time. */
export class QmpClient {
  private buffer = '';
  private waiting: { resolve: (v: unknown) => void; reject: (e: Error) => void } | undefined;
  private greeted: Promise<void>;

  private constructor(private readonly socket: Socket, private readonly path: string, timeoutMs: number) {
    socket.setEncoding('utf8');
    this.greeted = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(this.error('no QMP greeting')), timeoutMs);
      this.waiting = {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
    });
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (e) => this.fail(this.error(e.message)));
    socket.on('close', () => this.fail(this.error('QMP connection closed')));
  }

  /**
   * QEMU serves one QMP client at a time and refuses others meanwhile, so a refused connect is retried until
   * `timeoutMs`; a failed handshake closes the socket so we never hold QEMU's only slot.
   */
  static async connect(path: string, timeoutMs = 15_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    let socket: Socket;
    for (;;) {
      try {
        socket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'ECONNREFUSED' && code !== 'EAGAIN') || Date.now() > deadline) {
          throw new NearfieldError('IO', `cannot connect to the QMP socket: ${(e as Error).message}`, path);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const client = new QmpClient(socket, path, Math.max(1000, deadline - Date.now()));
    try {
      await client.greeted;
      await client.execute('qmp_capabilities');
    } catch (e) {
      client.close();
      throw e;
    }
    return client;
  }

  /** Run one command and return its `return` value; a QMP error becomes a NearfieldError. */
  async execute(command: string, args?: Record<string, unknown>, timeoutMs = 30_000): Promise<unknown> {
    if (this.waiting) throw this.error('a QMP command is already in flight');
    const reply = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting = undefined; reject(this.error(`${command}: no reply in ${timeoutMs} ms`)); }, timeoutMs);
      this.waiting = {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
    });
    this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    return reply;
  }

  close(): void {
    this.waiting = undefined;
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > 16 << 20) return this.fail(this.error('QMP reply too large'));
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return this.fail(this.error(`unparsable QMP message: ${line.slice(0, 80)}`));
      }
      if ('event' in msg) continue; // asynchronous events are not replies
      const w = this.waiting;
      this.waiting = undefined;
      if (!w) continue;
      if ('QMP' in msg) w.resolve(msg.QMP);
      else if ('error' in msg) {
        const err = msg.error as { class?: string; desc?: string };
        w.reject(this.error(`${err.class ?? 'Error'}: ${err.desc ?? 'unknown QMP error'}`));
      } else w.resolve(msg.return);
    }
  }

  private fail(e: Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(e);
  }

  private error(message: string): NearfieldError {
    return new NearfieldError('IO', message, this.path);
  }
}
