/**
 * Runs in a lab guest: the hostile guest of issue 11. Holds an image
 * directory open (its working directory), whose subdirectory `sub` holds
 * files n0..n(COUNT-1) (the test makes them from the host: 10,000 creates
 * over virtiofs in a TCG guest take minutes, and who made them does not
 * matter), and as soon as any of them is deleted (the host removing the
 * directory) swaps `sub` for a symlink to TARGET, a host path. A host that
 * removes by path then goes on deleting in TARGET.
 *
 *   node hostile-swap.js DIR COUNT TARGET READY_FILE STOP_FILE
 *
 * READY_FILE gets the pid once it watches; stdout says "swapped" when the
 * swap is done. Once STOP_FILE exists (a path on the guest's own tmpfs, cheap
 * to look at) it stops watching: a spinning guest vCPU costs the host a core.
 * It then stays, holding DIR, until killed.
 */
import fs from 'node:fs';

function main(): void {
  const [dir, countArg, target, ready, stop] = process.argv.slice(2);
  const count = Number(countArg);
  process.chdir(dir);
  const sentinels = Array.from({ length: 64 }, (_, i) => `sub/n${Math.floor((i * count) / 64)}`);
  if (!sentinels.every((s) => fs.existsSync(s))) throw new Error(`${dir}/sub does not hold n0..n${count - 1}`);
  fs.writeFileSync(ready, String(process.pid));
  // Synchronous and tight: the walk it races takes a few hundred milliseconds.
  for (let sweep = 0; ; sweep++) {
    if (sentinels.some((s) => !fs.existsSync(s))) {
      fs.renameSync('sub', 'sub.moved');
      fs.symlinkSync(target, 'sub');
      process.stdout.write('swapped\n');
      break;
    }
    if (sweep % 16 === 0 && fs.existsSync(stop)) {
      process.stdout.write('stopped watching\n');
      break;
    }
  }
  setInterval(() => undefined, 1 << 30);
}

main();
