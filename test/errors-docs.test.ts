/**
 * docs/errors.md documents every code of ERROR_CODES and nothing else, with the catalog's domain and
 * retry hint and an example message.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ERROR_CODES, type ErrorCode } from '../src/index.js';

/** docs/errors.md of the repository, found from this file upwards (it runs from dist/test/). */
function findDocs(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'docs', 'errors.md');
    if (existsSync(candidate)) return readFileSync(candidate, 'utf8');
    if (dirname(dir) === dir) throw new Error('docs/errors.md not found above ' + fileURLToPath(import.meta.url));
  }
}

/** Environment variables and other WEIR_ names the docs may mention that are not error codes. */
const NOT_CODES = new Set(['WEIR_LOG_LEVEL']);

describe('docs/errors.md', () => {
  const docs = findDocs();
  const sections = new Map<string, string>();
  for (const part of docs.split(/^## /m).slice(1)) {
    const title = part.slice(0, part.indexOf('\n')).trim();
    if (/^WEIR_[A-Z_]+$/.test(title)) sections.set(title, part);
  }
  const codes = Object.keys(ERROR_CODES) as ErrorCode[];

  it('has a section for every code in ERROR_CODES', () => {
    const missing = codes.filter((c) => !sections.has(c));
    assert.deepEqual(missing, [], `codes without a "## CODE" section: ${missing.join(', ')}`);
  });

  it('documents no code that does not exist', () => {
    const mentioned = new Set(docs.match(/\bWEIR_[A-Z_]+\b/g) ?? []);
    const unknown = [...mentioned].filter((c) => !(c in ERROR_CODES) && !NOT_CODES.has(c));
    assert.deepEqual(unknown, [], `docs mention codes that are not in ERROR_CODES: ${unknown.join(', ')}`);
    const extraSections = [...sections.keys()].filter((c) => !(c in ERROR_CODES));
    assert.deepEqual(extraSections, []);
  });

  it("states each code's domain and retry hint as the catalog does, with an example message", () => {
    for (const code of codes) {
      const text = sections.get(code);
      if (text === undefined) continue; // reported above
      const info = ERROR_CODES[code];
      assert.match(text, new RegExp(`^- Domain: \`${info.domain}\`$`, 'm'), `${code}: domain should be ${info.domain}`);
      assert.match(text, new RegExp(`^- Retryable: ${info.retryable ? 'yes' : 'no'}$`, 'm'), `${code}: retryable should be ${info.retryable}`);
      assert.match(text, new RegExp(`^\`\`\`\\n${code}\\b`, 'm'), `${code}: needs an example message in a code block`);
    }
  });
});
