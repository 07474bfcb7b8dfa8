// Firecracker API client (firecracker/src/api_server swagger): PATCH /vm {"state": "Paused"|"Resumed"} over a unix socket.

import { request } from 'node:http';
import { NearfieldError } from '../errors.js';

export async function firecrackerSetState(socketPath: string, state: 'Paused' | 'Resumed', timeoutMs = 5000): Promise<void> {
  const body = JSON.stringify({ state });
  await new Promise<void>((resolve, reject) => {
    const req = request(
      { socketPath, path: '/vm', method: 'PATCH', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Accept: 'application/json' }, timeout: timeoutMs },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { if (text.length < 65536) text += c; });
        res.on('end', () => {
          if (res.statusCode && res.statusCode >= 200 && res.statusCode < 300) resolve();
          else reject(new NearfieldError('IO', `Firecracker refused ${state}: HTTP ${res.statusCode} ${text.trim().slice(0, 200)}`, socketPath));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no reply in ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new NearfieldError('IO', `Firecracker API ${state} failed: ${e.message}`, socketPath)));
    req.end(body);
  });
}
