// Report benchmark: whole-process `nearfield report` on the sample, cold (no profile cache) and warm, against the targets.

import { nearfield, row } from './util.js';

export async function benchReport(): Promise<void> {
  nearfield(['report', '--json'], 1); // unpack the sample and fill the profile cache once
  const cold = nearfield(['report', '--json', '--no-cache'], 9);
  const warm = nearfield(['report', '--json'], 9);
  const bare = nearfield(['--version'], 9);
  row('report, whole process, cold (--no-cache)', `${cold.medianMs.toFixed(0)} ms median of ${cold.runs}, peak RSS ${cold.peakRssMb} MB (target ≤ 500 ms)`);
  row('report, whole process, warm (profile cache)', `${warm.medianMs.toFixed(0)} ms median of ${warm.runs}, peak RSS ${warm.peakRssMb} MB (target ≤ 150 ms)`);
  row('nearfield --version (Node start-up floor)', `${bare.medianMs.toFixed(0)} ms median; warm report = ${(warm.medianMs / bare.medianMs).toFixed(2)}× the floor`);
}
