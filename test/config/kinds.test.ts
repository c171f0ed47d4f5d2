/**
 * Every kind of location a config file can name, walked: each option of its table (which the
 * compiler checks against the location's options interface) is read from a file with its type,
 * an unknown one is refused, an option only code can give says so, and the docs list every kind.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LeafKind } from '../../src/config/kind.js';
import { BUILT_IN_KINDS, locationKinds } from '../../src/config/kinds.js';
import { loadConfig } from '../../src/config/load.js';
import { parseConfigText } from '../../src/config/node.js';
import { CODE_ONLY, type FieldType, type OptionTable } from '../../src/config/values.js';
import { ConfigFileError } from '../../src/errors.js';
import type { DiskOptions } from '../../src/locations/disk/disk.js';
import type { Levels } from '../../src/locations/compose/levels.js';
import type { NginxOptions } from '../../src/locations/http/nginx.js';
import type { SFTPOptions } from '../../src/locations/ssh/sftp.js';
import type { Small } from '../../src/locations/compose/small.js';
import { SSH_FIELDS } from '../../src/locations/ssh/ssh-kind.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const env = { SAMPLE: 'sample text' };

/** A value of each field type as a file holds it, and what the loader makes of it. */
function sample(type: FieldType): { written: unknown; read: unknown } {
  // one of a few strings: the last one, so that it is not the default by chance
  if (Array.isArray(type)) return { written: type.at(-1), read: type.at(-1) };
  if (typeof type === 'object') {
    const fields = Object.entries(type).map(([name, inner]) => [name, sample(inner)] as const);
    return { written: Object.fromEntries(fields.map(([name, value]) => [name, value.written])), read: Object.fromEntries(fields.map(([name, value]) => [name, value.read])) };
  }
  switch (type) {
    // every string through the environment, so that fields holding secrets take it too
    case 'string': return { written: '${env:SAMPLE}', read: 'sample text' };
    case 'number': return { written: 7, read: 7 };
    case 'boolean': return { written: false, read: false };
    case 'size': return { written: '2MiB', read: '2MiB' };
    case 'numbers': return { written: [1, -1], read: [1, -1] };
    case 'strings': return { written: ['${env:SAMPLE}'], read: ['sample text'] };
    case 'object': return { written: { any: { nested: [1, 'two'] } }, read: { any: { nested: [1, 'two'] } } };
    case 'string|number': return { written: 1234, read: 1234 };
    case 'number|null': return { written: null, read: null };
    case CODE_ONLY: throw new Error('no value in a file');
  }
}

const node = (value: unknown) => parseConfigText(JSON.stringify(value), 'cairn.config.json');
const leaves = BUILT_IN_KINDS.filter((kind): kind is LeafKind<unknown> => 'read' in kind);

function refusal(read: () => unknown): ConfigFileError {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigFileError);
    return error as ConfigFileError;
  }
  throw new Error('expected a ConfigFileError');
}

describe('config kinds', () => {
  it('every built-in kind is registered, lives beside its location and is listed in docs/configuration.md', () => {
    expect(BUILT_IN_KINDS.map((kind) => kind.name)).toEqual(['disk', 'memory', 'fanout', 'levels', 'small', 'packed', 'redis', 's3', 'sftp', 'scp', 'nginx']);
    expect(locationKinds()).toEqual(expect.arrayContaining(BUILT_IN_KINDS.map((kind) => kind.name)));
    const docs = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'configuration.md'), 'utf8');
    for (const kind of BUILT_IN_KINDS) expect(docs, kind.name).toMatch(new RegExp(`^\\|.*\`${kind.name}: `, 'm'));
  });

  describe.each(leaves.map((kind) => [kind.name, kind] as const))('%s', (_name, kind) => {
    const fileFields = Object.entries(kind.fields).filter(([, type]) => type !== CODE_ONLY);

    it('reads every option and argument of its table, each with its type, and hands them to the constructor as they are', () => {
      const written = Object.fromEntries(fileFields.map(([field, type]) => [field, sample(type).written]));
      const { args, options } = kind.read(node(written), env);
      const read = Object.fromEntries(fileFields.map(([field, type]) => [field, sample(type).read]));
      expect({ ...args, ...(options as object) }).toEqual(read);
      expect(Object.keys(args).sort()).toEqual(Object.keys(kind.args).sort());
      // the options are exactly the table's, none left out
      expect(Object.keys(options as object).sort()).toEqual(Object.keys(kind.options).filter((field) => kind.options[field as never] !== CODE_ONLY).sort());
    });

    it('refuses an unknown option, and a value of the wrong type, naming the field', () => {
      const unknown = refusal(() => kind.read(node({ [`${fileFields[0]![0]}x`]: 1 }), env));
      expect(unknown.field).toBe(`${fileFields[0]![0]}x`);
      expect(unknown.message).toContain('unknown option');
      for (const [field, type] of fileFields) {
        if (type === 'object' || type === 'string|number') continue;   // any value passes through / a string or a number
        const wrong = typeof type === 'object' ? 'not a mapping' : type === 'boolean' ? 'yes' : true;
        expect(refusal(() => kind.read(node({ [field]: wrong }), env)).field, field).toBe(field);
      }
    });

    it('says an option that only code can give (an object a program makes) cannot come from a file', () => {
      for (const [field] of Object.entries(kind.fields).filter(([, type]) => type === CODE_ONLY)) {
        const error = refusal(() => kind.read(node({ [field]: {} }), env));
        expect([error.field, error.message]).toEqual([field, expect.stringContaining('can be given in code, not in a config file')]);
      }
    });
  });

  it('the kinds whose node holds locations read every field beside them and beside their items', async () => {
    const dir = tempDir();
    const file = join(dir, 'cairn.config.yaml');
    writeFileSync(file, [
      'storage:',
      '  levels:',
      '    - small: { memory: {} }',
      '      maxSize: 1KiB',
      '      write: false',
      '      replicate: false',
      '      touch: true',
      '      name: cache',
      '    - fanout: [a, b]',
      '  skipFailing: true',
      '',
    ].join('\n'));
    const levels = (await loadConfig(file, { env })).local as Levels;
    const [first] = levels.levels;
    expect({ write: first!.write, replicate: first!.replicate, touch: first!.touch, name: first!.name }).toEqual({ write: false, replicate: false, touch: true, name: 'cache' });
    expect((first!.location as Small).maxSize).toBe(1024);
    expect((levels as unknown as { skipFailing: boolean }).skipFailing).toBe(true);
    const kinds = Object.fromEntries(BUILT_IN_KINDS.map((kind) => [kind.name, kind]));
    expect(Object.keys(kinds.levels!.itemFields!)).toEqual(['write', 'replicate', 'touch', 'writeThrough', 'name']);
    expect(Object.keys(kinds.levels!.siblings!)).toEqual(['skipFailing', 'batchSize']);
    expect(Object.keys(kinds.small!.siblings!)).toEqual(['maxSize']);
  });

  it('an option that takes one of a few words refuses any other, naming the choices', () => {
    const redis = leaves.find((kind) => kind.name === 'redis')!;
    expect((redis.read(node({ url: 'redis://localhost', layout: 'tarn' }), env).options as { layout: string }).layout).toBe('tarn');
    const error = refusal(() => redis.read(node({ url: 'redis://localhost', layout: 'tran' }), env));
    expect([error.field, error.message]).toEqual(['layout', expect.stringContaining('expected one of "cairn", "tarn", got "tran"')]);
  });

  it('a table that misses an option of its interface, or has one it lacks, or the wrong type, does not compile', () => {
    // these lines are checked by `tsc` (npm run typecheck): each must be an error
    // @ts-expect-error SFTPOptions' readConcurrency is missing
    const missing: OptionTable<SFTPOptions> = { ...SSH_FIELDS, levels: 'numbers', chunkSize: 'number', concurrency: 'number', fsync: 'boolean', touchInterval: 'number' };
    const extra: OptionTable<NginxOptions> = {
      timeoutMs: 'number', minBytesPerSecond: 'number', retry: 'object', headers: 'object', connections: 'number', dispatcher: CODE_ONLY,
      // @ts-expect-error NginxOptions has no `proxy`
      proxy: 'string',
    };
    const wrongType: OptionTable<DiskOptions> = {
      levels: 'numbers', minFree: 'size', maxUsage: 'number', fsync: 'boolean', verifyReads: 'boolean', touchInterval: 'number',
      syncSmallIo: 'boolean', group: 'string|number', groupWritable: 'boolean', markOnWrite: 'boolean',
      // @ts-expect-error maxSize is a Size, not a boolean
      maxSize: 'boolean',
    };
    expect([missing, extra, wrongType].every((table) => typeof table === 'object')).toBe(true);
  });
});
