// Firecracker API client (src/firecracker/swagger/firecracker.yaml): GET / (describeInstance: its state) and
// PATCH /vm {"state": "Paused"|"Resumed"} over the API's unix socket.

import { request } from 'node:http';
import { NearfieldError } from '../errors.js';

/** One HTTP exchange on the API socket: the status and (up to 64 KiB of) the body. */
function exchange(socketPath: string, method: string, path: string, body: string | undefined, what: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { Accept: 'application/json' };
    if (body !== undefined) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    const req = request({ socketPath, path, method, headers, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (text.length < 65536) text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`no reply in ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new NearfieldError('IO', `Firecracker API ${what} failed: ${e.message}`, socketPath)));
    req.end(body);
  });
}

export async function firecrackerSetState(socketPath: string, state: 'Paused' | 'Resumed', timeoutMs = 5000): Promise<void> {
  const r = await exchange(socketPath, 'PATCH', '/vm', JSON.stringify({ state }), state, timeoutMs);
  if (r.status < 200 || r.status >= 300) throw new NearfieldError('IO', `Firecracker refused ${state}: HTTP ${r.status} ${r.text.trim().slice(0, 200)}`, socketPath);
}

/** The instance's state from describeInstance: "Running", "Paused" or "Not started". */
export async function firecrackerState(socketPath: string, timeoutMs = 5000): Promise<string> {
  const r = await exchange(socketPath, 'GET', '/', undefined, 'describeInstance', timeoutMs);
  if (r.status !== 200) throw new NearfieldError('IO', `Firecracker describeInstance: HTTP ${r.status} ${r.text.trim().slice(0, 200)}`, socketPath);
  let info: { state?: unknown };
  try {
    info = JSON.parse(r.text) as { state?: unknown };
  } catch {
    throw new NearfieldError('IO', `Firecracker describeInstance did not answer JSON: ${r.text.slice(0, 80)}`, socketPath);
  }
  if (typeof info.state !== 'string') throw new NearfieldError('IO', 'Firecracker describeInstance gave no state', socketPath);
  return info.state;
}
