/**
 * explain() compares with the digests under which an entry for the given arguments was stored,
 * not with whatever code stored something last.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { markUnstable, smartCache } from '../../src/cache/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

describe('explain with older code for the same arguments', () => {
  it('names what changed since these arguments were stored', async () => {
    const dir = tempDir();
    // the same code reading another constant (and options) behind the same name: successive edits
    const build = (offset: number, options = {}) =>
      smartCache(dir, { name: 'shift', ...options })(
        async (x: number) =>
          x +
          markUnstable(function offsetOf() {
            return offset;
          })(),
      );
    const first = build(1);
    expect(await first(1)).toBe(2);
    // a later edit with a version option stores other arguments
    const second = build(2, { version: 2 });
    expect(await second(2)).toBe(4);
    // now a third edit: the entry for 1 is first's, the entry for 2 is second's
    const third = build(3, { version: 2 });
    expect((await third.explain(1)).reasons.sort()).toEqual(['the dependency offset changed', 'the version option is new'].sort());
    expect((await third.explain(2)).reasons).toEqual(['the dependency offset changed']);
    expect((await third.explain(3)).reasons).toEqual(['new arguments: no entry for them with any code of shift']);
    await third(3);
    expect((await third.explain(4)).message).toBe('shift: miss, new arguments: no entry for them with the current code');
    // going back to the first code finds its entry again
    expect(await build(1).explain(1)).toMatchObject({ hit: true, reasons: [] });
  });
});
