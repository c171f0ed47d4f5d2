import { randomBytes } from 'node:crypto';
import { constants, createReadStream, existsSync, promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertKey } from '../../key.js';
import { CONFIG_NAME } from '../../locations/lake/config.js';
import { Disk } from '../../locations/disk/disk.js';
import type { Progress } from '../../storage/maintenance/progress.js';
import { trackTempFile } from '../../storage/temp-cleanup.js';
import { BufferedOutput, diskOptions, json, JsonLines, openStorage, out, parse, progress, str, UsageError } from '../context.js';
import type { Values } from '../context.js';
import { formatBytes, tableRow } from '../format.js';

/** Files at least this large are written through a counting stream, so the bar moves within the file. */
const STREAM_FROM = 8 * 1024 * 1024;

export async function init(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, 'init');
  if (positionals.length !== 1) throw new UsageError('usage: cairn init <dir> [--group GROUP] [--levels 1,-1] [--packed]');
  if (values.packed) return initPacked(positionals[0]!, values);
  const levels = str(values, 'levels')?.split(',').map(Number);
  const disk = new Disk(positionals[0]!, { ...diskOptions(values), ...(levels ? { levels } : {}) });
  if (values.json) await json({ root: disk.root, levels: disk.levels });
  else if (!values.quiet) {
    // the next step names this lake: every other command refuses to guess one
    const quote = (path: string) => (/^[\w./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`);
    await out(
      `Lake ready at ${disk.root} (levels ${JSON.stringify(disk.levels)})\n` +
        `Next: cairn write FILE --lake ${quote(positionals[0]!)}   (or export CAIRN_LAKE=${quote(disk.root)} to leave out --lake)\n`,
    );
  }
  return 0;
}

/** `cairn init --packed DIR`: a Packed store (small values in one SQLite file), which `--lake DIR` then opens. */
async function initPacked(dir: string, values: Values): Promise<number> {
  if (str(values, 'levels') !== undefined) throw new UsageError('--levels is the folder layout of a Disk lake: a Packed store has none');
  if (existsSync(join(dir, CONFIG_NAME))) throw new UsageError(`${dir} is a Disk lake already (it has a config.yml)`);
  const { Packed } = await import('../../locations/packed/packed.js');
  const store = new Packed(dir);
  await store.close();
  if (values.json) await json({ root: store.dir, packed: true });
  else if (!values.quiet) await out(`Packed store ready at ${store.dir}\nNext: cairn write FILE --lake ${dir}\n`);
  return 0;
}

function counting(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onBytes(chunk.length);
      callback(null, chunk);
    },
  });
}

export async function write(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, 'write');
  if (positionals.length === 0) throw new UsageError('usage: cairn write <files…> [--labels a,b]   (`-` reads stdin)');
  const labels = str(values, 'labels')?.split(',').filter(Boolean) ?? [];
  const storage = await openStorage(values);
  const sizes = await Promise.all(positionals.map(async (file) => (file === '-' ? 0 : (await fsp.stat(file).catch(() => null))?.size ?? 0)));
  // stdin's size is not known before it ends: no total then, the bar counts files
  const totalBytes = positionals.includes('-') ? null : sizes.reduce((a, b) => a + b, 0);
  const state: Progress = { operation: 'write', files: 0, totalFiles: positionals.length, bytes: 0, totalBytes };
  const view = progress(values, 'write');
  const results: { file: string; key: string; size: number }[] = [];
  try {
    for (const [index, file] of positionals.entries()) {
      const size = sizes[index]!;
      const add = (n: number) => {
        state.bytes += n;
        view.update(state);
      };
      let key: string | null;
      if (file === '-') key = await storage.write(process.stdin.pipe(counting(add)), { labels });
      else if (size >= STREAM_FROM) key = await storage.write(createReadStream(file).pipe(counting(add)), { labels });
      else {
        key = await storage.write(resolve(file), { labels });
        add(size);
      }
      state.files++;
      view.update(state);
      results.push({ file, key: key!, size: file === '-' ? state.bytes : size });
      if (!values.json) await out(`${key}\n`);
    }
  } finally {
    view.finish();
    await storage.close();
  }
  if (values.json) await json(results);
  return 0;
}

export async function read(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, 'read');
  if (positionals.length !== 1) throw new UsageError('usage: cairn read <key> [-o FILE]');
  const key = positionals[0]!;
  try {
    assertKey(key);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const output = str(values, 'output');
  const storage = await openStorage(values);
  const view = progress(values, 'read');
  try {
    // progress comes from the read itself (the API's onProgress), as for every other reader
    const onProgress = output ? (state: Progress) => view.update(state) : undefined;
    await storage.read(
      key,
      async (value) => {
        // to a file: written beside it and renamed, so a failed read leaves no partial file. The
        // temporary name is unpredictable and created exclusively, never through a link someone
        // planted there (a shared folder such as the system's temp folder)
        let target: string | null = null;
        try {
          if (output) {
            const handle = await createExclusive(output);
            target = handle.path;
            // Ctrl-C while reading: the partial file goes too
            const untrack = trackTempFile(target);
            try {
              await pipeline(value.stream(), handle.file.createWriteStream());
              await fsp.rename(target, output);
            } finally {
              untrack();
            }
          } else {
            // stdout is written, never ended: ending a socket shared with the shell shuts it for everyone
            await pipeline(value.stream(), async (chunks: AsyncIterable<Buffer>) => {
              for await (const chunk of chunks) await out(chunk);
            });
          }
        } catch (error) {
          if (target) await fsp.rm(target, { force: true });
          throw error;
        }
      },
      { onProgress },
    );
  } finally {
    if (output) view.finish();
    await storage.close();
  }
  return 0;
}

/** A new file beside `output`, opened with O_EXCL and O_NOFOLLOW: it did not exist and is not a link. */
async function createExclusive(output: string): Promise<{ path: string; file: fsp.FileHandle }> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  for (;;) {
    const path = `${output}.cairn-partial-${randomBytes(6).toString('hex')}`;
    try {
      return { path, file: await fsp.open(path, flags, 0o666) };
    } catch (error) {
      // a name already taken (by chance or on purpose): another one
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/** `cairn ls`: rows are printed as the listing goes (memory does not grow with the number of keys). */
export async function ls(args: string[]): Promise<number> {
  const { values } = parse(args, 'ls');
  const wanted = str(values, 'labels')?.split(',').filter(Boolean) ?? [];
  const storage = await openStorage(values);
  const lines = values.json ? new JsonLines() : null;
  const table = new BufferedOutput();
  let rows = 0;
  try {
    for await (const { key, meta } of storage.contents()) {
      const labels = meta.labels ?? [];
      if (!wanted.every((label) => labels.includes(label))) continue;
      const row = { key, size: meta.size, labels, lastUsed: meta.lastUsed?.toISOString() ?? null };
      if (lines !== null) await lines.push(row);
      else {
        // fixed widths (a key is 64 characters, a size at most 9, a time 24): no need to see every row first
        if (rows === 0) await table.write(tableRow(['KEY', 'SIZE', 'LAST USED', 'LABELS'], LS_WIDTHS) + '\n');
        await table.write(tableRow([key, row.size === null ? '?' : formatBytes(row.size), row.lastUsed ?? '-', labels.join(',')], LS_WIDTHS) + '\n');
      }
      rows++;
    }
  } finally {
    await storage.close();
  }
  await lines?.end();
  await table.flush();
  return 0;
}

const LS_WIDTHS = [64, 9, 24];
