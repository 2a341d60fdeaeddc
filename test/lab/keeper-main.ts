/** Entry point of a lab guest's keeper process, started detached by `lab up`. */
import fs from 'node:fs';
import { Keeper, KeeperOptions } from './keeper.js';

const options = JSON.parse(process.argv[2]) as KeeperOptions;
const keeper = new Keeper(options, (report) => {
  fs.writeSync(1, JSON.stringify(report) + '\n');
  fs.closeSync(1);
});
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => keeper.stop());
void keeper.start();
