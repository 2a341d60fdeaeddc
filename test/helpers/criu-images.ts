import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The entries of an image as `crit decode` prints them (CRIU's own reader).
 * Integers too large for a double are kept as decimal strings.
 */
export function critDecode(file: string): Json[] {
  const out = execFileSync('crit', ['decode', '-i', file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const exact = out.replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"');
  return (JSON.parse(exact) as { entries: Json[] }).entries;
}

/** Every image of a directory decoded by crit, by file name (pages-*.img are raw and left out). */
export function decodeDir(dir: string): Map<string, Json[]> {
  const out = new Map<string, Json[]>();
  for (const name of fs.readdirSync(dir).sort()) {
    if (name.startsWith('pages-') || !(name.endsWith('.img') || name === 'stats-dump')) continue;
    out.set(name, critDecode(path.join(dir, name)));
  }
  return out;
}

/** pagemap entries with neighbours merged: where CRIU splits its runs (page pipe sizes) is no property of the dump. */
export function mergedPagemap(entries: Json[]): { vaddr: number; nr_pages: number; flags: number }[] {
  const out: { vaddr: number; nr_pages: number; flags: number }[] = [];
  for (const e of entries.slice(1) as unknown as { vaddr: number; nr_pages: number; flags?: number }[]) {
    const last = out[out.length - 1];
    const flags = e.flags ?? 4;
    if (last && last.vaddr + last.nr_pages * 4096 === e.vaddr && last.flags === flags) last.nr_pages += e.nr_pages;
    else out.push({ vaddr: e.vaddr, nr_pages: e.nr_pages, flags });
  }
  return out;
}

/** The dumped pages of a process by virtual address (pagemap-PID.img with its pages-ID.img). */
export function dumpedPages(dir: string, pid: number): Map<number, Buffer> {
  const entries = critDecode(path.join(dir, `pagemap-${pid}.img`)) as { pages_id?: number; vaddr: number; nr_pages: number }[];
  const data = fs.readFileSync(path.join(dir, `pages-${entries[0].pages_id}.img`));
  const pages = new Map<number, Buffer>();
  let off = 0;
  for (const e of entries.slice(1)) {
    for (let i = 0; i < e.nr_pages; i++, off += 4096) pages.set(e.vaddr + i * 4096, data.subarray(off, off + 4096));
  }
  if (off !== data.length) throw new Error(`pages of ${pid}: pagemap covers ${off} bytes, the image holds ${data.length}`);
  return pages;
}

/** Paths where two decoded values differ, e.g. `core-12.img[0].tc.flags: 1 != 2`. */
export function differences(a: Json, b: Json, where: string, out: string[] = []): string[] {
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) out.push(`${where}: ${a.length} entries != ${b.length}`);
    for (let i = 0; i < Math.min(a.length, b.length); i++) differences(a[i], b[i], `${where}[${i}]`, out);
  } else if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!(key in a)) out.push(`${where}.${key}: only CRIU has it (${JSON.stringify(b[key]).slice(0, 80)})`);
      else if (!(key in b)) out.push(`${where}.${key}: only ovmigrate has it (${JSON.stringify(a[key]).slice(0, 80)})`);
      else differences(a[key], b[key], `${where}.${key}`, out);
    }
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    out.push(`${where}: ${JSON.stringify(a).slice(0, 80)} != ${JSON.stringify(b).slice(0, 80)}`);
  }
  return out;
}
