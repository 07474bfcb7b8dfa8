// The one importer of the native addon (napi-rs, native/binding.cjs): loads it once and maps its errors.

import { createRequire } from 'node:module';
import { NearfieldError, type ErrorCode } from '../errors.js';
import type * as Binding from '../../native/binding.js';

export type NativeBinding = typeof Binding;

let loaded: NativeBinding | undefined;

/** The addon, loaded on first use so commands that never touch guest bytes do not pay for it. */
export function native(): NativeBinding {
  if (!loaded) {
    const require = createRequire(import.meta.url);
    try {
      loaded = require('../../../native/binding.cjs') as NativeBinding;
    } catch (e) {
      throw new NearfieldError(
        'INTERNAL',
        `cannot load the native addon: ${(e as Error).message}`,
        'native/binding.cjs',
        'run `npm run build` (it compiles native/ with cargo)',
      );
    }
  }
  return loaded;
}

/** The core's closed error codes (native/src/error.rs); its errors arrive as "CODE: message" (binding/mod.rs to_js). */
const coded = /^(FAULT|BAD_DATA|UNSUPPORTED|NOT_FOUND|IO): ([\s\S]*)$/;

/** The one mapping of a native error to a NearfieldError naming `file`; anything else passes through. */
export function fromNative(e: unknown, file?: string): unknown {
  if (e instanceof NearfieldError) return e;
  const message = (e as { message?: unknown })?.message;
  const m = typeof message === 'string' ? coded.exec(message) : null;
  return m ? new NearfieldError(m[1] as ErrorCode, m[2] as string, file) : e;
}

/** Run a native call, turning its error into a NearfieldError naming `file`. */
export function call<T>(file: string | undefined, fn: (n: NativeBinding) => T): T {
  try {
    return fn(native());
  } catch (e) {
    throw fromNative(e, file);
  }
}

/** Async twin of `call` for native calls that return promises. */
export async function callAsync<T>(file: string | undefined, fn: (n: NativeBinding) => Promise<T>): Promise<T> {
  try {
    return await fn(native());
  } catch (e) {
    throw fromNative(e, file);
  }
}
