// scenarios.mjs — the guest builder's scenarios (issue 10): `none`, `hung` (writers blocked on a frozen rootfs, a
// lock chain behind them, khungtaskd's reports; guest/init.sh and guest/hang.c) and `panic` (a sysrq crash after
// the truth, kernel/panic.c with panic=0). What the host does differently for each, and what it checks.

import * as fs from 'node:fs';

export const SCENARIOS = ['none', 'hung', 'panic', 'churn'];

/** The kernel command line. panic=-1 reboots at once (and -no-reboot then ends QEMU), which suits a guest that
    should never panic; the panicked guest must stay up to be captured, and panic=0 spins forever. */
export function kernelCmdline({ no5lvl, scenario }) {
  const panic = scenario === 'panic' ? 'panic=0' : 'panic=-1';
  // churn writes to /dev/kmsg as fast as it can: without devkmsg=on the kernel rate-limits (drops) its lines.
  const kmsg = scenario === 'churn' ? ' printk.devkmsg=on' : '';
  return `console=ttyS0 ${panic} quiet${no5lvl ? ' no5lvl' : ''}${kmsg}`;
}

/** The last line panic() prints (kernel/panic.c: "---[ end Kernel panic - not syncing: %s ]---"). */
export const PANIC_END = '---[ end Kernel panic - not syncing:';

/** What the host waits for after the truth's END line before it pauses the guest: nothing, or (panic) the
    console showing the end of the panic. Returns {panic_seen_at} or {}. */
export async function waitAfterTruth({ scenario, serialLog, deadline, hasExited, sleep, fail }) {
  if (scenario !== 'panic') return {};
  for (;;) {
    if (hasExited()) fail('QEMU exited while waiting for the guest to panic');
    if (Date.now() > deadline) fail('the guest did not panic within the timeout after printing its truth');
    const text = fs.existsSync(serialLog) ? fs.readFileSync(serialLog, 'latin1') : '';
    const at = text.indexOf(PANIC_END);
    if (at >= 0 && text.indexOf('\n', at) >= 0) return { panic_seen_at: Date.now() };
    await sleep(20);
  }
}

/** The panic as the console showed it (serial.log), from the sysrq line to panic's end marker, parsed:
    message, CPU/PID/Comm line, call trace, kernel offset. */
export function panicFromConsole(serialText) {
  const lines = serialText.replace(/\r/g, '').split('\n');
  const end = lines.findIndex((l) => l.includes(PANIC_END));
  if (end < 0) return null;
  // Back from the end marker to the first line of the crash: the sysrq line, an oops/BUG line or panic's own first line.
  let start = end;
  for (let i = end - 1; i >= 0 && i >= end - 400; i--) {
    if (/sysrq: |Kernel panic - not syncing|BUG: |Oops: /.test(lines[i])) start = i;
    else if (start !== end && !/^\[\s*\d+\.\d+\]/.test(lines[i])) break; // an untimestamped line (init's, truth's) before it
  }
  const text = lines.slice(start, end + 1);
  const strip = (l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, ''); // console timestamps, if printk.time is on
  const body = text.map(strip);
  const message = body.map((l) => /Kernel panic - not syncing: (.*)$/.exec(l)?.[1]).find(Boolean) ?? null;
  // "CPU: 1 PID: 198 Comm: truth Not tainted 6.1.0-57-amd64 #1 Debian …" (6.12 adds "UID: 0" after CPU)
  const who = body.map((l) => /^CPU: (\d+) (?:UID: (\d+) )?PID: (\d+) Comm: (.+?) (Not tainted|Tainted: \S+) (\S+)/.exec(l)).find(Boolean);
  const trace = [];
  const traceAt = body.findIndex((l) => l.trim() === 'Call Trace:');
  for (let i = traceAt + 1; traceAt >= 0 && i < body.length; i++) {
    const l = body[i].trim();
    if (l === '<TASK>' || l === '</TASK>' || l === '<IRQ>' || l === '</IRQ>') continue;
    const m = /^(\? )?([\w.]+)\+(0x[0-9a-f]+)\/(0x[0-9a-f]+)(?: \[(\S+)\])?$/.exec(l);
    if (!m) break;
    trace.push({ symbol: m[2], offset: Number(m[3]), size: Number(m[4]), module: m[5] ?? null, reliable: !m[1] });
  }
  const offset = body.map((l) => /^Kernel Offset: (0x[0-9a-f]+|disabled)/.exec(l)?.[1]).find(Boolean) ?? null;
  return {
    message,
    cpu: who ? Number(who[1]) : null,
    pid: who ? Number(who[3]) : null,
    comm: who ? who[4] : null,
    tainted: who ? who[5] : null,
    release: who ? who[6] : null,
    call_trace: trace,
    kernel_offset: offset,
    console_text: text.join('\n'),
  };
}

/** Adds what only the host saw (the panic on the console) and what the scenario changes between print and pause. */
export function addHostScenarioTruth(truth, { scenario, serialText, endSeenAt, panicSeenAt }) {
  const changes = truth.after_print.known_changes;
  if (scenario === 'hung') {
    changes.push('hung: the frozen rootfs stays frozen and every blocked task stays in D until the pause; khungtaskd is silenced (hung_task_warnings 0) once it has reported them, so the kernel log does not grow');
  }
  if (scenario === 'panic') {
    const panic = panicFromConsole(serialText);
    truth.scenario.panic = panic && {
      source: 'the console (serial.log), read by the host after the truth was printed',
      console_ms_after_end: panicSeenAt === null ? null : panicSeenAt - endSeenAt,
      ...panic,
    };
    changes.push('panic: after the END line the printer raised the console loglevel to 8 and wrote "c" to /proc/sysrq-trigger: it is the panicking task (R, on its CPU, spinning in panic() with panic=0); the other CPUs were stopped; the kernel log gained the panic records (scenario.panic.console_text)');
  }
}

/** Fails the build when the scenario's guest did not end up as intended (see serial.log). */
export function checkScenario(truth, scenario) {
  const problems = [];
  if (truth.scenario?.name !== scenario) problems.push(`the guest ran scenario ${truth.scenario?.name}, not ${scenario}`);
  if (scenario === 'hung') {
    const hung = truth.scenario.hung;
    if (!hung) problems.push('no hung.json from the guest');
    else {
      if (!truth.mounts.some((m) => m.mountpoint === '/mnt/root')) problems.push('the rootfs is not mounted');
      for (const w of hung.writers) if (w.state !== 'D') problems.push(`writer ${w.role} (pid ${w.pid}) is in state ${w.state}, expected D`);
      if (!hung.locks?.all_in_d) problems.push('the lock chain did not form (guest/hang.c: a task never reached D)');
      for (const t of hung.locks?.tasks ?? []) if (t.state !== 'D') problems.push(`${t.comm} (tid ${t.tid}) is in state ${t.state}, expected D`);
      const reported = new Set(truth.scenario.hung_task_reports.map((r) => `${r.comm}:${r.pid}`));
      for (const want of hung.expected_reports) if (!reported.has(want)) problems.push(`khungtaskd did not report ${want}`);
      if (hung.hung_task_timeout_secs_sysctl !== hung.timeout_secs) problems.push(`hung_task_timeout_secs is ${hung.hung_task_timeout_secs_sysctl}, expected ${hung.timeout_secs}`);
    }
  }
  if (scenario === 'panic') {
    const p = truth.scenario.panic;
    if (!p) problems.push('the console shows no complete panic');
    else {
      if (p.message !== 'sysrq triggered crash') problems.push(`unexpected panic message: ${p.message}`);
      if (p.pid !== truth.printer_pid) problems.push(`the panic happened in pid ${p.pid}, not in the printer (${truth.printer_pid})`);
    }
  }
  if (problems.length) throw new Error(`the ${scenario} scenario is incomplete (see serial.log):\n  ${problems.join('\n  ')}`);
}
