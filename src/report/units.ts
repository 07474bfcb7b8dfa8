// Numbers as the classic tools print them, one function per tool family's rule, used everywhere the same figure is
// shown: coreutils' human sizes (df -h, ls -h), procps-ng 4's (free), percentages, durations like uptime.

/**
 * coreutils human_readable() as df -h and ls -h call it (human_autoscale | human_SI | human_base_1024, rounding
 * human_ceiling): powers of 1024 with the suffixes K M G T P E, one decimal while the value is below 10, and
 * always rounded up — so "4.0K", "9.9M", "10M", "1023M", "1.0G". Below 1024 the plain number.
 */
export function humanSize(n: bigint): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
  if (n < 1024n) return n.toString();
  let e = 0;
  let div = 1n;
  while (n >= div * 1024n && e < units.length - 1) {
    div *= 1024n;
    e++;
  }
  // Tenths, rounded up, in exact integer arithmetic.
  const tenths = (n * 10n + div - 1n) / div;
  if (tenths < 100n) return `${tenths / 10n}.${tenths % 10n}${units[e]}`;
  const whole = (n + div - 1n) / div;
  if (whole >= 1024n && e < units.length - 1) return `1.0${units[e + 1]}`;
  return `${whole}${units[e]}`;
}

/** humanSize for plain numbers (byte counts below 2^53), with a B for bytes so table columns read alike. */
export function humanBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '-';
  if (bytes < 0) return `-${humanBytes(-bytes)}`;
  const n = BigInt(Math.round(bytes));
  return n < 1024n ? `${n}B` : humanSize(n);
}

/** free's unit choice: `exponent` 0 = its default (KiB, or kB with --si), 1 = bytes, 2 = Ki/k, 3 = Mi/M … 6 = Pi/P. */
export interface FreeUnits {
  exponent: number;
  si: boolean;
  human: boolean;
}

/**
 * procps-ng 4.0 free's scale_size() (src/free.c), for a figure in KiB as /proc/meminfo gives it.
 * Human-readable (-h): the first of "NB", then for each unit K M G T P "N.Nu" and "Nu" (u = K or Ki …) that fits
 * in 4 characters (5 with the binary "i"): "%.1f" of the quotient as a C float, rounded as printf rounds, or the
 * quotient truncated to a whole number — so 203.6 MiB prints "203Mi", 9.96 KiB "9Ki". Otherwise the quotient by
 * 1024^(exponent−1) (1000^ with --si) truncated; the default divides the bytes by 1024 (1000 with --si).
 */
export function freeScaled(kib: number, u: FreeUnits): string {
  const base = u.si ? 1000 : 1024;
  const bytes = kib * 1024;
  if (!u.human) {
    if (u.exponent === 0) return String(Math.floor(bytes / base));
    if (u.exponent === 1) return String(bytes);
    return String(Math.trunc(bytes / base ** (u.exponent - 1)));
  }
  let text = `${bytes}B`;
  if (text.length <= 4) return text;
  const width = u.si ? 4 : 5;
  for (const [i, unit] of ['K', 'M', 'G', 'T', 'P'].entries()) {
    const suffix = u.si ? unit : `${unit}i`;
    const q = bytes / base ** (i + 1);
    text = `${printfTenths(Math.fround(q))}${suffix}`;
    if (text.length <= width) return text;
    text = `${Math.trunc(q)}${suffix}`;
    if (text.length <= width) return text;
  }
  return text;
}

/** C's printf("%.1f") of a float's exact value: ties (x.x5 exactly representable) go to the even tenth. */
function printfTenths(v: number): string {
  const t = v * 10; // exact: a float has 24 significant bits
  let n = Math.floor(t);
  const frac = t - n;
  if (frac > 0.5 || (frac === 0.5 && n % 2 === 1)) n += 1;
  return `${Math.floor(n / 10)}.${n % 10}`;
}

/** A share with one decimal, rounded half away from zero, as every nearfield table prints one: "92.5%". */
export function percent(value: number): string {
  if (!Number.isFinite(value)) return '-';
  const tenths = Math.round(Math.abs(value) * 10 + 1e-9);
  return `${value < 0 ? '-' : ''}${Math.floor(tenths / 10)}.${tenths % 10}%`;
}

export function humanDuration(seconds: number): string {
  const s = Math.floor(seconds);
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const mins = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  const hm = `${hours}:${String(mins).padStart(2, '0')}:${String(secs).padStart(2, '0')}`;
  return days > 0 ? `${days} day${days === 1 ? '' : 's'}, ${hm}` : hm;
}
