// Human units as the classic tools print them: powers of 1024 with one decimal (df -h, free -h), durations like uptime.

/** df -h: powers of 1024, one decimal below 10, always rounded up (coreutils human_ceiling). */
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

export function humanDuration(seconds: number): string {
  const s = Math.floor(seconds);
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const mins = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  const hm = `${hours}:${String(mins).padStart(2, '0')}:${String(secs).padStart(2, '0')}`;
  return days > 0 ? `${days} day${days === 1 ? '' : 's'}, ${hm}` : hm;
}
