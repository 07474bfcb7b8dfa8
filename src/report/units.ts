// Human units as the classic tools print them: powers of 1024 with one decimal (df -h, free -h), durations like uptime.

export function humanBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '-';
  const units = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
  let v = Math.abs(bytes);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const sign = bytes < 0 ? '-' : '';
  if (i === 0) return `${sign}${v}B`;
  // Like df -h: one decimal below 10, rounded up so a nearly-full disk never looks emptier than it is.
  const shown = v < 10 ? Math.ceil(v * 10) / 10 : Math.ceil(v);
  return `${sign}${v < 10 ? shown.toFixed(1) : shown.toFixed(0)}${units[i]}`;
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
