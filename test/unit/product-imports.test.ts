import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PRODUCT = ['introspect', 'shim', 'common'];

function* sources(dir: string): Generator<string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(p);
    else if (entry.name.endsWith('.ts')) yield p;
  }
}

/** Every relative module specifier of a TypeScript source: import/export ... from, import(), require(). */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.[^'"]*)['"]/gm)) found.push(m[1]);
  return found;
}

describe('the product without the test lab', () => {
  it('no file of introspect/, shim/ or common/ imports anything under test/', () => {
    const offenders: string[] = [];
    let files = 0;
    for (const top of PRODUCT) {
      for (const file of sources(path.join(ROOT, top))) {
        files++;
        for (const spec of specifiers(fs.readFileSync(file, 'utf8'))) {
          const target = path.relative(ROOT, path.resolve(path.dirname(file), spec));
          if (!PRODUCT.some((p) => target === p || target.startsWith(p + path.sep))) offenders.push(`${path.relative(ROOT, file)} -> ${spec}`);
        }
      }
    }
    assert.ok(files > 50, `found the sources (${files} files under ${ROOT})`);
    assert.deepEqual(offenders, []);
  });
});
