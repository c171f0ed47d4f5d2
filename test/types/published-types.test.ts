/**
 * The published declarations (what `npm run build` emits for users) are compiled with a user's
 * file: what must type-check does, and every line marked `// error TSnnnn` is that error, and no
 * other line has one. The same checks in test files (expectTypeOf, @ts-expect-error) run against
 * the sources; this one also catches what only the .d.ts loses (a private member's type).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const root = join(import.meta.dirname, '..', '..');

const options: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2023.d.ts', 'lib.decorators.d.ts'],
  types: ['node'],
  typeRoots: [join(root, 'node_modules', '@types')],
  strict: true,
  skipLibCheck: true,
};

/** Emits the declarations of src/ into `out` (as the build does); fails on any error. */
function emitDeclarations(out: string): void {
  const program = ts.createProgram([join(root, 'src', 'index.ts'), join(root, 'src', 'entries', 'cache.ts')], { ...options, declaration: true, emitDeclarationOnly: true, rootDir: join(root, 'src'), outDir: out });
  const result = program.emit();
  expect(result.diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
}

const USER_FILE = `import { HashKeyStorage, type Key } from './dist/index.js';
import { smartCache, type Explanation, type CacheStats } from './dist/entries/cache.js';

const strict = new HashKeyStorage('lake');
const key: Key = await strict.write(Buffer.from('x'));
const bytes: Buffer = await strict.readBytes(key);
const size: number = await strict.read(key, (value) => value.size ?? 0);
const asked: Key = await strict.write(Buffer.from('x'), { error: false }); // error TS2322

const lenient = new HashKeyStorage('lake', { error: false });
const maybe: Key | null = await lenient.write(Buffer.from('x'));
const notSure: Key = await lenient.write(Buffer.from('x')); // error TS2322
const forced: Key = await lenient.write(Buffer.from('x'), { error: true });
const missing: Buffer = await lenient.readBytes(key); // error TS2322
const taken: HashKeyStorage = lenient; // error TS2322
const either: HashKeyStorage<boolean> = lenient;
const eitherToo: HashKeyStorage<boolean> = strict;
const fromFile = await HashKeyStorage.fromConfig();
const unknownMode: Key = await fromFile.write(Buffer.from('x')); // error TS2322

class Pipeline {
  @smartCache('cache')
  async embed(text: string) {
    return text.length;
  }
}
const pipeline = new Pipeline();
const explained: Explanation = await smartCache.of(pipeline.embed).explain('hello');
const wrongArgument = smartCache.of(pipeline.embed).explain(42); // error TS2345
const stats: CacheStats = smartCache.of(pipeline.embed).stats;
smartCache.of(pipeline.embed).on('hit', (event) => event.from satisfies 'entry' | 'running' | 'lock');
smartCache.of(pipeline.embed).on('hits', () => undefined); // error TS2345
const direct = pipeline.embed.stats; // error TS2339
const wrapped = smartCache('cache')(async (n: number) => n * 2);
wrapped.on('store', (event) => event.ms satisfies number).on('miss', (event) => event.replaces satisfies boolean);

export { key, bytes, size, asked, maybe, notSure, forced, missing, taken, either, eitherToo, unknownMode, explained, wrongArgument, stats, direct };
`;

describe('published declarations', () => {
  it("type a user's file as documented: Key from a default storage, null only with error: false, smartCache.of for decorated methods", () => {
    const dir = tempDir();
    emitDeclarations(join(dir, 'dist'));
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    const user = join(dir, 'user.ts');
    writeFileSync(user, USER_FILE);
    const program = ts.createProgram([user], { ...options, noEmit: true });
    const found = ts
      .getPreEmitDiagnostics(program)
      .map((d) => {
        if (d.file?.fileName !== user) return `elsewhere: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
        return `${d.file.getLineAndCharacterOfPosition(d.start!).line + 1} TS${d.code}`;
      })
      .sort();
    const expected = USER_FILE.split('\n')
      .flatMap((line, index) => {
        const marked = /\/\/ error (TS\d+)$/.exec(line);
        return marked ? [`${index + 1} ${marked[1]}`] : [];
      })
      .sort();
    expect(expected.length).toBe(8);
    expect(found).toEqual(expected);
  });
});
