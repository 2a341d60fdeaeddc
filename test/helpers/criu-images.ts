import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { decodeImage, entryObject } from '../../introspect/criu/index.js';
import { RAW_NET_IMAGE, assertSameNetImages } from './net-images.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The entries of an image as `crit decode` prints them (CRIU's own reader).
 * Integers too large for a double are kept as decimal strings.
 */
export function critDecode(file: string): Json[] {
  const out = execFileSync('crit', ['decode', '-i', file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return (JSON.parse(exactIntegers(out)) as { entries: Json[] }).entries;
}

/** crit's own interpreter (its #! line): the one that has pycriu, crit's library. */
function critPython(): string {
  const crit = execFileSync('sh', ['-c', 'command -v crit'], { encoding: 'utf8' }).trim();
  return fs.readFileSync(crit, 'utf8').split('\n')[0].replace(/^#!\s*/, '').trim();
}

/** What `crit decode` does (pycriu.images.load), for many images in one interpreter: crit starts slowly, once per image. */
const DECODE_MANY = `
import json, sys, pycriu
out = {}
for p in sys.argv[1:]:
    with open(p, 'rb') as f:
        out[p] = pycriu.images.load(f, False, False)['entries']
json.dump(out, sys.stdout)
`;

/** Every image of a directory decoded by crit's reader, by file name (pages-*.img, tarballs and a netns's ip/iptables output are raw and left out). */
export function decodeDir(dir: string): Map<string, Json[]> {
  const names = fs.readdirSync(dir).sort()
    .filter((name) => !name.startsWith('pages-') && !name.endsWith('.tar.gz.img') && !RAW_NET_IMAGE.test(name) && (name.endsWith('.img') || name === 'stats-dump'));
  // crit 3.17 reads `size` bytes after each ipcns-shm entry even when in_pagemaps says the contents are elsewhere
  // (pycriu ipc_shm_handler): those images, criu's own too, go through our reader instead.
  const ours = (n: string) => n.startsWith('ipcns-shm-');
  const crit = names.filter((n) => !ours(n));
  const text = execFileSync(critPython(), ['-c', DECODE_MANY, ...crit.map((n) => path.join(dir, n))], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const all = JSON.parse(exactIntegers(text)) as Record<string, Json[]>;
  for (const n of names.filter(ours)) {
    const image = decodeImage(fs.readFileSync(path.join(dir, n)), n);
    all[path.join(dir, n)] = image.entries.map((_, i) => entryObject(image, i) as Json);
  }
  return new Map(names.map((n) => [n, all[path.join(dir, n)]]));
}

/** Integers too large for a double, kept as decimal strings. */
function exactIntegers(json: string): string {
  return json.replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"');
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
  return pagemapPages(dir, `pagemap-${pid}.img`, String(pid));
}

/** The pages a pagemap image and its pages-ID.img hold, by vaddr (for pagemap-shmem-SHMID.img, the offset in the object). */
export function pagemapPages(dir: string, pagemap: string, pid = pagemap): Map<number, Buffer> {
  const image = decodeImage(fs.readFileSync(path.join(dir, pagemap)));
  const entries = image.entries.map((_, i) => entryObject(image, i)) as unknown as { pages_id?: number; vaddr: string; nr_pages: number }[];
  const data = fs.readFileSync(path.join(dir, `pages-${entries[0].pages_id}.img`));
  const pages = new Map<number, Buffer>();
  let off = 0;
  for (const e of entries.slice(1)) {
    for (let i = 0; i < e.nr_pages; i++, off += 4096) pages.set(Number(e.vaddr) + i * 4096, data.subarray(off, off + 4096));
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

/**
 * The page where CRIU's compel injects its syscall instruction to start the
 * parasite: the first page of the task's first executable mapping
 * (compel/src/lib/infect.c find_executable_area). The write makes it a
 * private copy, so CRIU dumps it; ovmigrate, which never runs code in the
 * task, leaves it to the file.
 */
function injectedPage(criu: Map<string, Json[]>, pid: number): number {
  const mm = criu.get(`mm-${pid}.img`)![0] as { vmas: { start: number; prot: number }[] };
  return Number(mm.vmas.find((v) => Number(v.prot) & 4)!.start);
}

/**
 * What legitimately differs between CRIU's own dump (`criu dump` or `runc
 * checkpoint`, with --leave-running) and `ovmigrate dump` of the same
 * frozen tree, and why. Everything else must decode (crit) to the same.
 */
function withoutLegitimateDifferences(images: Map<string, Json[]>, dropPages: Map<number, number>): Map<string, Json[]> {
  const out = new Map<string, Json[]>();
  let dropped = 0;
  for (const [name, entries] of images) {
    // CRIU writes the dumping criu's clocks; restore reads them only for a tree in its own time namespace, which ovmigrate refuses.
    if (name.startsWith('timens-')) continue;
    let e = JSON.parse(JSON.stringify(entries)) as Json[];
    // A zombie's core has no thread_info (criu/cr-dump.c dump_one_zombie): nothing of the FPU to compare.
    if (name.startsWith('core-') && (e[0] as { thread_info?: Json }).thread_info) {
      // CRIU keeps the XSAVE components CPUID lists for the CPU it runs on; under QEMU TCG CPUID leaves out MPX's BNDREGS,
      // which the guest kernel still saves: ovmigrate writes that component (all zeros), which restores the same.
      const xsave = (e[0] as { thread_info: { fpregs: { xsave: Record<string, Json> } } }).thread_info.fpregs.xsave;
      if ((xsave.bndreg_state as number[] | undefined)?.every((v) => Number(v) === 0)) delete xsave.bndreg_state;
      // XSAVE state whose components all hold their initial values restores the same whether XSTATE_BV marks them in use
      // or not (a task frozen right after execve has 0; CRIU's parasite running it makes QEMU's XSAVE mark them all).
      if (fpuInInitState((e[0] as { thread_info: { fpregs: Record<string, Json> } }).thread_info.fpregs)) xsave.xstate_bv = 'init';
    }
    if (name.startsWith('pagemap-')) {
      // Where CRIU splits runs of pages into pagemap entries follows its page pipes' sizes; and see injectedPage().
      const drop = dropPages.get(Number(/^pagemap-(\d+)\.img$/.exec(name)?.[1]));
      const pages = mergedPagemap(e).flatMap((r) => Array.from({ length: r.nr_pages }, (_, i) => ({ vaddr: r.vaddr + i * 4096, flags: r.flags })));
      const kept = pages.filter((p) => p.vaddr !== drop);
      dropped += pages.length - kept.length;
      e = [e[0], ...mergedPagemap([null, ...kept.map((p) => ({ ...p, nr_pages: 1 }))])] as Json[];
    }
    if (name.startsWith('mountpoints-')) {
      // The container's root mount is never mounted by CRIU on restore (runc hands it the rootfs); its options are
      // overlayfs's own (lowerdir=..., module-private state), which ovmigrate does not rebuild.
      for (const m of e as Record<string, Json>[]) if (m.mountpoint === '/') m.options = '';
      // A bind mount from outside (ext_key) of a file system CRIU does not know (fstype 0, e.g. 9p) or of overlayfs (17, its
      // options as the root's): restore binds its source and never reads the options CRIU copies from mountinfo, which
      // ovmigrate does not rebuild for such file systems.
      for (const m of e as Record<string, Json>[]) if (m.ext_key !== undefined && (m.fstype === 0 || m.fstype === 17)) m.options = '';
    }
    // CRIU never sets a zombie's thread id (dump_zombies skips dump_task_threads, which fills it in): its pstree entry
    // holds what xrealloc left there, 0 in practice; ovmigrate writes the pid. Restore never reads it (read_pstree_item
    // skips threads[0], the leader), so only the count is compared.
    if (name === 'pstree.img') {
      for (const p of e as { pid: number; threads: Json[] }[]) if (isZombie(images, p.pid)) p.threads = p.threads.map(() => 'a zombie leader');
    }
    // criu/tty.c termios_copy() memcpy's glibc's 32 c_cc bytes over 19 u32s: past the first 8 CRIU leaves its heap's
    // leftovers, which restore never reads (it copies the same 32 bytes back).
    if (name === 'tty-info.img') {
      for (const t of e as Record<string, Record<string, Json[]> | undefined>[]) {
        for (const k of ['termios', 'termios_locked']) if (t[k]?.c_cc) t[k]!.c_cc = t[k]!.c_cc.slice(0, 8);
      }
    }
    // The order of files.img follows CRIU's walk (unix sockets wait for their peers); ids tie entries to fds.
    if (name === 'files.img') e.sort((x, y) => (x as { id: number }).id - (y as { id: number }).id);
    out.set(name, e);
  }
  // Timings, CRIU's page-pipe counters and its pages_scanned (it counts every VMA it walks) describe the dumper, not the tree.
  const stats = (images.get('stats-dump')![0] as { dump: Record<string, number> }).dump;
  out.set('stats-dump', [{ pages_written: Number(stats.pages_written) - dropped }]);
  return out;
}

/** FXSAVE/XSAVE contents equal to the architectural initial state (FCW 0x37f, MXCSR 0x1f80, all registers zero). */
function fpuInInitState(f: Record<string, Json>): boolean {
  const zero = (v: Json | undefined) => !v || (Array.isArray(v) ? v.every((x) => Number(x) === 0) : Number(v) === 0);
  const x = f.xsave as Record<string, Json>;
  return Number(f.cwd) === 0x37f && Number(f.mxcsr) === 0x1f80 && ['swd', 'twd', 'fop', 'rip', 'rdp', 'st_space', 'xmm_space'].every((k) => zero(f[k])) &&
    Object.entries(x).every(([k, v]) => k === 'xstate_bv' || k === 'pkru' || zero(v));
}

/**
 * Each thread's rseq area (struct rseq, include/uapi/linux/rseq.h): the kernel rewrites its cpu_id_start and cpu_id
 * (bytes 0-7) and, from 6.3, node_id and mm_cid (bytes 20-27) when the task returns to user space
 * (kernel/rseq.c rseq_update_cpu_node_id), as it does when CRIU's parasite runs it between the two dumps.
 */
const RSEQ_KERNEL_WRITTEN = [[0, 8], [20, 28]] as const;

/** Each thread's rseq area, from CRIU's core images. */
function rseqAreas(criu: Map<string, Json[]>): number[] {
  return [...criu.keys()].filter((f) => f.startsWith('core-')).flatMap((f) => {
    const core = criu.get(f)![0] as { thread_core?: { rseq_entry?: { rseq_abi_pointer?: number | string } } };
    const ptr = core.thread_core?.rseq_entry?.rseq_abi_pointer;
    return ptr ? [Number(ptr)] : [];
  });
}

/** A tarball's entries as GNU tar lists them (type, mode, owner, size or device, name, link), and each file's bytes. */
function tarballContents(file: string): { listing: string[]; files: Map<string, string> } {
  const listing = execFileSync('tar', ['tvzf', file, '--numeric-owner'], { encoding: 'utf8' }).trim().split('\n')
    .map((l) => l.replace(/^(\S+)\s+(\S+)\s+(\S+)\s+\S+\s+\S+\s+(.*)$/, '$1 $2 $3 $4'));
  const dir = fs.mkdtempSync('/tmp/ovm-tar-');
  try {
    execFileSync('tar', ['xzf', file, '-C', dir, '--no-same-owner']);
    const files = new Map<string, string>();
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) files.set(path.relative(dir, p), fs.readFileSync(p).toString('hex'));
      }
    };
    walk(dir);
    return { listing, files };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether CRIU dumped a process as a zombie (criu/cr-dump.c dump_one_zombie: tc.task_state TASK_DEAD). */
export function isZombie(images: Map<string, Json[]>, pid: number): boolean {
  const core = images.get(`core-${pid}.img`)?.[0] as { tc?: { task_state?: number } } | undefined;
  return core?.tc?.task_state === 2;
}

/**
 * Differences a suite expects in one image (by file name), with their
 * reasons: each function checks them on the decoded entries (ours, CRIU's)
 * and makes the two equal in place.
 */
export type KnownDifferences = Record<string, (ours: Json[], criu: Json[]) => void>;

/**
 * `ovmigrate dump` of a frozen tree against CRIU's own dump of the same
 * frozen tree, made after it: the same image files, decoding (crit) to the
 * same values but for the legitimate differences above, the same pages
 * byte for byte, the same tmpfs contents, the same descriptors.json.
 */
export function assertSameDump(ours: string, theirs: string, known: KnownDifferences = {}): void {
  const criu = decodeDir(theirs);
  // Zombies (task_state TASK_DEAD) have a core image and no memory: the file lists compared below hold no mm or pagemap for them.
  const tree = (criu.get('pstree.img') as { pid: number }[]).filter((p) => !isZombie(criu, p.pid));
  // Only where the page is still the file's for ovmigrate: an earlier CRIU run may have made it private already.
  const injected = new Map(tree.map((p) => [p.pid, injectedPage(criu, p.pid)] as const)
    .filter(([pid, va]) => !dumpedPages(ours, pid).has(va)));
  const mine = decodeDir(ours);
  // A suite's own known differences, checked and then set aside before the comparison.
  for (const [name, settle] of Object.entries(known)) settle(mine.get(name) ?? [], criu.get(name) ?? []);
  const o = withoutLegitimateDifferences(mine, new Map());
  const t = withoutLegitimateDifferences(criu, injected);
  assert.deepEqual([...o.keys()], [...t.keys()], 'the same image files');
  const diffs = [...t.keys()].flatMap((name) => differences(o.get(name)!, t.get(name)!, name));
  assert.deepEqual(diffs, [], 'decoded images differ');
  const rseq = rseqAreas(criu);
  for (const p of tree) {
    const mine = dumpedPages(ours, p.pid);
    const criu = dumpedPages(theirs, p.pid);
    if (injected.has(p.pid)) criu.delete(injected.get(p.pid)!);
    assert.deepEqual([...mine.keys()], [...criu.keys()], `pid ${p.pid}: the same pages`);
    for (const [va, page] of mine) {
      const other = Buffer.from(criu.get(va)!);
      const own = Buffer.from(page);
      for (const area of rseq) {
        if (area < va || area >= va + 4096) continue;
        for (const [from, to] of RSEQ_KERNEL_WRITTEN) for (const b of [other, own]) b.fill(0, area - va + from, area - va + to);
      }
      if (!own.equals(other)) {
        const at = own.findIndex((b, i) => b !== other[i]);
        const near = rseq.filter((a) => a >= va && a < va + 4096).map((a) => ` (an rseq area at +0x${(a - va).toString(16)})`).join('');
        assert.fail(`pid ${p.pid}: page 0x${va.toString(16)} differs from byte +0x${at.toString(16)}${near}`);
      }
    }
  }
  const shmem = fs.readdirSync(theirs).filter((f) => f.startsWith('pagemap-shmem-'));
  for (const f of shmem) {
    const mine = pagemapPages(ours, f);
    const criu = pagemapPages(theirs, f);
    assert.deepEqual([...mine.keys()], [...criu.keys()], `${f}: the same pages`);
    for (const [off, page] of mine) assert.ok(Buffer.from(page).equals(Buffer.from(criu.get(off)!)), `${f}: page at offset 0x${off.toString(16)} differs`);
  }
  assertSameNetImages(ours, theirs);
  const tarballs = (d: string) => fs.readdirSync(d).filter((f) => f.endsWith('.tar.gz.img')).sort();
  assert.deepEqual(tarballs(ours), tarballs(theirs), 'the same tmpfs tarballs');
  for (const f of tarballs(theirs)) assert.deepEqual(tarballContents(path.join(ours, f)), tarballContents(path.join(theirs, f)), f);
  const descriptors = (d: string) => (fs.existsSync(path.join(d, 'descriptors.json')) ? JSON.parse(fs.readFileSync(path.join(d, 'descriptors.json'), 'utf8')) : undefined);
  assert.deepEqual(descriptors(ours), descriptors(theirs), 'descriptors.json');
}

/**
 * files.img entries whose build-id CRIU read from the file and ovmigrate
 * could not, because the guest's page cache no longer held the ELF header
 * (reclaimed: seen on the cloud build's virtiofs root): legitimate only where
 * `ourLog` (the dump's stderr) names the file as such. Restore then checks
 * the size alone, as after a criu dump that could not read a build-id.
 */
export function buildIdsNotCached(ourLog: string): KnownDifferences {
  return {
    'files.img': (ours, criu) => {
      const mine = new Map((ours as { id: number; reg?: { build_id?: Json } }[]).map((e) => [e.id, e.reg]));
      for (const e of criu as { id: number; reg?: { name: string; build_id?: Json } }[]) {
        const o = mine.get(e.id);
        if (!e.reg?.build_id || !o || o.build_id) continue;
        assert.ok(ourLog.includes(`${e.reg.name}: ELF header not in the guest's page cache`),
          `files.img id ${e.id} (${e.reg.name}): CRIU has a build-id, ours none, and the dump did not say the header was uncached`);
        delete e.reg.build_id;
      }
    },
  };
}
