import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BadDataError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import {
  findVmcoreinfo, kernelImageToPhys, parseVmcoreinfoNote, parseVmcoreinfoText, verifyUtsname,
} from '../../introspect/kernel/vmcoreinfo.js';
import { FileMemory, MemorySegment } from '../../introspect/memory/physical-memory.js';

const TEXT = [
  'OSRELEASE=6.1.0-56-amd64',
  'BUILD-ID=0123456789abcdef0123456789abcdef01234567',
  'PAGESIZE=4096',
  'SYMBOL(init_uts_ns)=ffffffff81e13880',
  'OFFSET(uts_namespace.name)=4',
  'SYMBOL(_stext)=ffffffff81000000',
  'SYMBOL(kallsyms_names)=ffffffff82dbdac0',
  'SIZE(page)=64',
  'LENGTH(mem_section)=2048',
  'NUMBER(phys_base)=-16777216',
  'NUMBER(pgtable_l5_enabled)=1',
  'NUMBER(KERNEL_IMAGE_SIZE)=1073741824',
  'KERNELOFFSET=16c00000',
  '',
].join('\n');

function note(text: string, opts: { namesz?: number; type?: number; name?: string; pad?: number; descsz?: number } = {}): Buffer {
  const body = Buffer.from(text, 'latin1');
  const header = Buffer.alloc(24);
  header.writeUInt32LE(opts.namesz ?? 11, 0);
  header.writeUInt32LE(opts.descsz ?? body.length, 4);
  header.writeUInt32LE(opts.type ?? 0, 8);
  header.write(opts.name ?? 'VMCOREINFO\0', 12, 'latin1');
  header[23] = opts.pad ?? 0;
  return Buffer.concat([header, body, Buffer.alloc(12)]);
}

describe('vmcoreinfo text', () => {
  it('parses every line format, NUMBER as signed and phys_base as an unsigned address', () => {
    const info = parseVmcoreinfoText(TEXT);
    assert.equal(info.osRelease, '6.1.0-56-amd64');
    assert.equal(info.pageSize, 4096);
    assert.equal(info.kernelOffset, 0x16c00000n);
    assert.equal(info.physBase, 0xffffffffff000000n);
    assert.equal(info.pagingLevels, 5);
    assert.equal(info.symbols.get('kallsyms_names'), 0xffffffff82dbdac0n);
    assert.equal(info.offsets.get('uts_namespace.name'), 4);
    assert.equal(info.sizes.get('page'), 64);
    assert.equal(info.lengths.get('mem_section'), 2048n);
  });

  it('a negative phys_base still maps kernel addresses right', () => {
    const info = parseVmcoreinfoText(TEXT);
    assert.equal(kernelImageToPhys(info, 0xffffffff81e13880n), 0xe13880n);
    assert.throws(() => kernelImageToPhys(info, 0xffff888000000000n), InvalidArgumentError);
    assert.throws(() => kernelImageToPhys(info, 0xffffffffc0000000n), InvalidArgumentError);
  });

  it('takes a NUMBER printed in hex (6.12: NUMBER(VMALLOC_START)=0x%lx)', () => {
    const info = parseVmcoreinfoText(TEXT + 'NUMBER(VMALLOC_START)=0xff4eae25c0000000\n');
    assert.equal(info.numbers.get('VMALLOC_START'), 0xff4eae25c0000000n);
    assert.throws(() => parseVmcoreinfoText(TEXT + 'NUMBER(VMALLOC_START)=0xzz\n'), BadDataError);
  });

  it('defaults to 4-level paging without pgtable_l5_enabled', () => {
    assert.equal(parseVmcoreinfoText(TEXT.replace('NUMBER(pgtable_l5_enabled)=1\n', '')).pagingLevels, 4);
  });

  const hostile: [string, string][] = [
    ['missing OSRELEASE', TEXT.replace(/^OSRELEASE=.*\n/m, '')],
    ['missing phys_base', TEXT.replace(/^NUMBER\(phys_base\).*\n/m, '')],
    ['missing KERNELOFFSET', TEXT.replace(/^KERNELOFFSET.*\n/m, '')],
    ['non-hex symbol', TEXT.replace('=ffffffff81000000', '=0xffffffff8100000g')],
    ['symbol over 64 bits', TEXT.replace('=ffffffff81000000', '=1ffffffff81000000')],
    ['100-digit number', TEXT.replace('=-16777216', '=' + '9'.repeat(100))],
    ['number over 64 bits', TEXT.replace('=-16777216', '=18446744073709551616')],
    ['offset not decimal', TEXT.replace('OFFSET(uts_namespace.name)=4', 'OFFSET(uts_namespace.name)=x')],
    ['line without =', TEXT + 'garbage\n'],
    ['release with control bytes', TEXT.replace('6.1.0-56-amd64', '6.1\x01')],
    ['too many lines', TEXT + 'A=1\n'.repeat(1000)],
    ['too long', 'OSRELEASE=' + 'x'.repeat(5000)],
  ];
  for (const [what, text] of hostile) {
    it(`rejects ${what} with BadDataError`, () => assert.throws(() => parseVmcoreinfoText(text), BadDataError));
  }
});

describe('vmcoreinfo ELF note', () => {
  it('accepts the note as the kernel lays it out', () => {
    const buf = note(TEXT);
    assert.deepEqual(parseVmcoreinfoNote(buf, 0), { descsz: TEXT.length, text: TEXT });
  });

  const bad: [string, Buffer][] = [
    ['n_namesz other than 11', note(TEXT, { namesz: 12 })],
    ['n_type other than 0', note(TEXT, { type: 1 })],
    ['another name', note(TEXT, { name: 'VMCOREINFX\0' })],
    ['non-zero padding', note(TEXT, { pad: 1 })],
    ['n_descsz of 0', note(TEXT, { descsz: 0 })],
    ['n_descsz over a page', note(TEXT, { descsz: 5000 })],
    ['n_descsz past the buffer', note(TEXT, { descsz: TEXT.length + 100 })],
    ['text not starting with OSRELEASE=', note('PAGESIZE=4096\n')],
    ['a stray OSRELEASE= string without a header', Buffer.concat([Buffer.alloc(24), Buffer.from(TEXT)])],
  ];
  for (const [what, buf] of bad) {
    it(`ignores ${what}`, () => assert.equal(parseVmcoreinfoNote(buf, 0), undefined));
  }

  it('never reads outside the buffer', () => {
    const buf = note(TEXT);
    for (const off of [-1, buf.length - 23, buf.length, buf.length + 100]) assert.equal(parseVmcoreinfoNote(buf, off), undefined);
    for (let cut = 0; cut < buf.length; cut++) parseVmcoreinfoNote(buf.subarray(0, cut), 0);
  });
});

describe('finding vmcoreinfo in guest RAM', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-vmci-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A RAM file with the note at a file offset, a stray copy of the text elsewhere, and init_uts_ns. */
  function ram(size: number, noteAt: number, segments: MemorySegment[]): FileMemory {
    const data = Buffer.alloc(size);
    Buffer.from(TEXT).copy(data, 0x3000); // like vmcoreinfo_data: text without a note header
    note(TEXT).copy(data, noteAt);
    const file = path.join(dir, `ram-${noteAt}`);
    fs.writeFileSync(file, data);
    return new FileMemory(file, segments);
  }

  it('finds a page-aligned note and reports its guest-physical address', () => {
    const mem = ram(8 << 20, 0x5000, [{ gpa: 0n, size: BigInt(8 << 20), fileOffset: 0n }]);
    try {
      assert.equal(findVmcoreinfo(mem).noteAddress, 0x5000n);
    } finally {
      mem.close();
    }
  });

  it('falls back to a byte scan for a note that is not page-aligned, also across chunk boundaries', () => {
    for (const at of [0x5123, (4 << 20) - 30, (4 << 20) - 2]) {
      const mem = ram(8 << 20, at, [{ gpa: 0n, size: BigInt(8 << 20), fileOffset: 0n }]);
      try {
        assert.equal(findVmcoreinfo(mem).noteAddress, BigInt(at), `note at ${at}`);
      } finally {
        mem.close();
      }
    }
  });

  it('finds a note in RAM above 4 GiB at its guest-physical address', () => {
    const mem = ram(8 << 20, (6 << 20) + 0x1000, [
      { gpa: 0n, size: BigInt(4 << 20), fileOffset: 0n },
      { gpa: 0x1_0000_0000n, size: BigInt(4 << 20), fileOffset: BigInt(4 << 20) },
    ]);
    try {
      assert.equal(findVmcoreinfo(mem).noteAddress, 0x1_0000_0000n + BigInt((2 << 20) + 0x1000));
    } finally {
      mem.close();
    }
  });

  it('is NotFoundError when RAM holds only the bare text', () => {
    const data = Buffer.alloc(1 << 20);
    Buffer.from(TEXT).copy(data, 0x2000);
    const file = path.join(dir, 'bare');
    fs.writeFileSync(file, data);
    const mem = new FileMemory(file, [{ gpa: 0n, size: BigInt(data.length), fileOffset: 0n }]);
    try {
      assert.throws(() => findVmcoreinfo(mem), NotFoundError);
    } finally {
      mem.close();
    }
  });

  it('verifies init_uts_ns through phys_base, and rejects a wrong layout', () => {
    // phys_base -16 MiB: init_uts_ns (0xffffffff81e13880 + 4) lives at physical 0xe13884.
    const data = Buffer.alloc(16 << 20);
    note(TEXT).copy(data, 0x5000);
    data.write('Linux', 0xe13884, 'latin1');
    data.write('6.1.0-56-amd64', 0xe13884 + 130, 'latin1');
    const file = path.join(dir, 'uts');
    fs.writeFileSync(file, data);
    const good = new FileMemory(file, [{ gpa: 0n, size: BigInt(data.length), fileOffset: 0n }]);
    const shifted = new FileMemory(file, [{ gpa: 0n, size: BigInt(8 << 20), fileOffset: 0n }, { gpa: BigInt(8 << 20), size: BigInt(8 << 20), fileOffset: 0n }]);
    try {
      assert.deepEqual(verifyUtsname(good, findVmcoreinfo(good)), { sysname: 'Linux', release: '6.1.0-56-amd64' });
      assert.throws(() => verifyUtsname(shifted, findVmcoreinfo(shifted)), BadDataError);
    } finally {
      good.close();
      shifted.close();
    }
  });
});
