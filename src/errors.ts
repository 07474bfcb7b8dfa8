// nearfield's error model: the native core's closed error codes (ARCHITECTURE.md §native boundary 6) plus CLI-level kinds.

/** Codes the native core raises, plus the ones the TypeScript side adds. */
export type ErrorCode =
  | 'FAULT'
  | 'BAD_DATA'
  | 'UNSUPPORTED'
  | 'NOT_FOUND'
  | 'IO'
  | 'USAGE'
  | 'INTERNAL';

/** Exit codes of the CLI (ARCHITECTURE.md "CLI conventions"). */
export const ExitCode = { ok: 0, failure: 1, usage: 2, partial: 3 } as const;

/** A failure worth a one-line message: what failed, why, and which file (and where in it). */
export class NearfieldError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly file?: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'NearfieldError';
  }

  get exitCode(): number {
    return this.code === 'USAGE' ? ExitCode.usage : ExitCode.failure;
  }

  /** `nearfield: <what failed>: <why> (<file>)` and an optional hint line. */
  format(what: string): string {
    const where = this.file ? ` (${this.file})` : '';
    const hint = this.hint ? `\nhint: ${this.hint}` : '';
    return `nearfield: ${what}: ${this.message}${where}${hint}`;
  }
}

/** Turn anything thrown (a Node fs error, a bug) into a NearfieldError. Native errors are mapped where they
 *  are called (src/native/gateway.ts), so they arrive here as NearfieldErrors already. */
export function toNearfieldError(e: unknown, file?: string): NearfieldError {
  if (e instanceof NearfieldError) return e;
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err?.message === 'string' ? err.message : String(e);
  if (typeof err?.code === 'string') {
    if (err.code === 'ENOENT') return new NearfieldError('NOT_FOUND', 'no such file', file ?? pathOf(e));
    if (err.code === 'EACCES' || err.code === 'EPERM') return new NearfieldError('IO', 'permission denied', file ?? pathOf(e));
    if (err.code.startsWith('E')) return new NearfieldError('IO', message, file);
  }
  return new NearfieldError('INTERNAL', message, file);
}

function pathOf(e: unknown): string | undefined {
  const p = (e as { path?: unknown })?.path;
  return typeof p === 'string' ? p : undefined;
}
