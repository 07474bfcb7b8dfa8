// The one importer of the native addon (napi-rs, native/binding.cjs): loads it once and maps its errors.

import { createRequire } from 'node:module';
import { NearfieldError, toNearfieldError } from '../errors.js';
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

/** Run a native call, turning its error (a JS Error whose `code` is FAULT, BAD_DATA, …) into a NearfieldError naming `file`. */
export function call<T>(file: string | undefined, fn: (n: NativeBinding) => T): T {
  try {
    return fn(native());
  } catch (e) {
    throw toNearfieldError(e, file);
  }
}

/** Async twin of `call` for native calls that return promises. */
export async function callAsync<T>(file: string | undefined, fn: (n: NativeBinding) => Promise<T>): Promise<T> {
  try {
    return await fn(native());
  } catch (e) {
    throw toNearfieldError(e, file);
  }
}
