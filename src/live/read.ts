// One read of a target, for every command and the report alike: pause a live VM for it when asked (`--pause`), and
// say afterwards how the reads held together — `consistency: live, N retries`, or `torn: …` (a warning, exit 3).

import type { Target } from '../target.js';
import type { Consistency, Guest } from '../guest.js';
import { pauseForRead, type Pause } from './qemu.js';

export interface ReadSession {
  /** The VM was paused for this read (and is resumed by `end`). */
  paused: boolean;
  /** Tell an opened guest whether its RAM may move (false while paused). */
  opened(guest: Guest): void;
  end(): Promise<void>;
}

/** Begin reading `target`: a live VM with `--pause` is stopped over QMP (only if it was running). */
export async function beginRead(target: Target): Promise<ReadSession> {
  let pause: Pause | undefined;
  if (target.live?.pause && target.live.qmp) pause = await pauseForRead(target.live.qmp);
  return {
    paused: pause !== undefined,
    opened: (guest) => {
      if (target.live) guest.setLive(pause === undefined);
    },
    end: async () => {
      await pause?.resume();
    },
  };
}

/** The one line every output of a live or paused read carries: "consistency: live, 2 retries" / "… paused …". */
export function consistencyLine(c: Consistency, paused: boolean): string {
  const retries = `${c.retries} ${c.retries === 1 ? 'retry' : 'retries'}`;
  if (paused) return `consistency: paused for the read (QMP stop/cont), ${retries}`;
  return `consistency: ${c.live ? 'live' : 'as stored'}, ${retries}${c.tornReads > 0 ? ` (${c.tornReads} torn read${c.tornReads === 1 ? '' : 's'} re-read)` : ''}`;
}

/** The warning for what stayed torn after the retries ("torn: tasks: torn list: …"), or none. */
export function tornWarning(c: Consistency): string | undefined {
  return c.torn.length > 0 ? `torn: ${c.torn.join('; ')}` : undefined;
}
