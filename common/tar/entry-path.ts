import { ArchiveRefusedError } from '../errors.js';

/**
 * An entry's name as components under the target: a leading "./" and "."
 * components go (Go's and GNU tar's archives name entries both ways); an
 * absolute name, a ".." anywhere, or an empty component in the middle is
 * refused, never cleaned into something else. [] is the target itself.
 */
export function entryComponents(name: string): string[] {
  if (name.startsWith('/')) throw new ArchiveRefusedError(name, 'absolute path: entries must stay inside the target');
  const parts = name.split('/');
  if (parts.includes('..')) throw new ArchiveRefusedError(name, '".." component: entries must stay inside the target');
  const out = parts.filter((p, i) => p !== '.' && !(p === '' && i === parts.length - 1));
  if (out.includes('')) throw new ArchiveRefusedError(name, 'empty path component');
  return out;
}
