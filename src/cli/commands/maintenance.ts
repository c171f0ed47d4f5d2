import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { CONFIG_NAME } from '../../locations/lake/config.js';
import { PACKED_FILE } from '../../locations/packed/packed-db.js';
import { Disk } from '../../locations/disk/disk.js';
import { HashKeyStorage } from '../../storage/hash-key-storage.js';
import { du as diskUsage } from '../../storage/maintenance/du.js';
import { gc as collect, type Evicted, parseDuration } from '../../storage/maintenance/gc.js';
import { parseSize } from '../../size.js';
import { migrate as copyAll } from '../../storage/maintenance/migrate.js';
import { readStats, sumStats, clearStats } from '../../storage/maintenance/stats.js';
import { verify as check } from '../../storage/maintenance/verify.js';
import { cacheDu, cacheFolderOf, cacheGc } from '../cache-folder.js';
import { BufferedOutput, diskOptions, json, JsonLines, lakeAt, openStorage, out, parse, progress, str, UsageError, type Values } from '../context.js';
import { formatBytes, table } from '../format.js';

function int(values: Values, name: string, fallback: number): number {
  const raw = str(values, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`--${name} must be a positive integer, got ${raw}`);
  return value;
}

export async function du(args: string[]): Promise<number> {
  const { values } = parse(args, 'du');
  const cache = cacheFolderOf(values);
  if (cache !== null) return cacheDu(cache, values);
  const storage = await openStorage(values);
  try {
    const usage = await diskUsage(storage);
    if (values.json) await json(usage);
    else {
      const rows = usage.map((u) => [
        u.location,
        String(u.count),
        formatBytes(u.bytes),
        u.fileBytes === undefined ? '-' : formatBytes(u.fileBytes),
        u.temp ? `${u.temp.count} (${formatBytes(u.temp.bytes)})` : '-',
        u.quarantine ? String(u.quarantine.count) : '-',
      ]);
      await out(table([['LOCATION', 'BLOBS', 'BYTES', 'ON DISK', 'TEMP FILES', 'QUARANTINED'], ...rows]) + '\n');
    }
  } finally {
    await storage.close();
  }
  return 0;
}

export async function verify(args: string[]): Promise<number> {
  const { values } = parse(args, 'verify');
  const storage = await openStorage(values);
  const view = progress(values, 'verify');
  try {
    const report = await check(storage, { jobs: int(values, 'jobs', 4), onProgress: view.update });
    view.finish();
    if (values.json) await json(report);
    else {
      for (const bad of report.bad) await out(`CORRUPTED ${bad.key} in ${bad.location}${bad.movedTo ? ` moved to ${bad.movedTo}` : ''}\n`);
      for (const failure of report.errors) await out(`UNREADABLE ${failure.key} in ${failure.location}: ${failure.error}\n`);
      await out(`${report.checked} blobs checked (${formatBytes(report.bytes)}): ${report.bad.length} corrupted, ${report.errors.length} unreadable\n`);
    }
    return report.bad.length === 0 && report.errors.length === 0 ? 0 : 1;
  } finally {
    await storage.close();
  }
}

export async function gc(args: string[]): Promise<number> {
  const { values } = parse(args, 'gc');
  const options = {
    ...(str(values, 'max-size') !== undefined ? { maxSize: str(values, 'max-size')! } : {}),
    ...(str(values, 'max-count') !== undefined ? { maxCount: Number(str(values, 'max-count')) } : {}),
    ...(str(values, 'older-than') !== undefined ? { olderThan: str(values, 'older-than')! } : {}),
    ...(str(values, 'keep-recent') !== undefined ? { keepRecent: str(values, 'keep-recent')! } : {}),
    ...(str(values, 'tmp-age') !== undefined ? { tmpAge: str(values, 'tmp-age')! } : {}),
    dryRun: values['dry-run'] === true,
  };
  if (options.maxCount !== undefined && !(Number.isInteger(options.maxCount) && options.maxCount >= 0)) {
    throw new UsageError(`--max-count must be a whole number, got ${str(values, 'max-count')}`);
  }
  try {
    for (const name of ['olderThan', 'keepRecent', 'tmpAge'] as const) if (options[name] !== undefined) parseDuration(options[name]);
    if (options.maxSize !== undefined) parseSize(options.maxSize);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const cache = cacheFolderOf(values);
  if (cache !== null) return cacheGc(cache, options, values);
  const plain = str(values, 'plain-cache');
  const plainCache = plain === undefined ? false : plain === 'all' ? true : plain.split(',').filter(Boolean);
  const storage = await openStorage(values);
  const view = progress(values, options.dryRun ? 'gc (dry run)' : 'gc');
  const verb = options.dryRun ? 'would remove' : 'removed';
  // each removal is printed (or a JSON line) as gc goes: nothing kept per key
  const lines = values.json ? new JsonLines('{"removed":') : null;
  const text = new BufferedOutput();
  // gc waits for each line (a pipe that drains slowly holds gc back, rather than lines piling up)
  const onRemove = (entry: Evicted) =>
    lines ? lines.push({ key: entry.key, size: entry.size, lastUsed: entry.lastUsed.toISOString() })
      : text.write(`${verb} ${entry.key} ${formatBytes(entry.size)} last used ${entry.lastUsed.toISOString()}\n`);
  try {
    const report = await collect(storage, { ...options, plainCache, onRemove, onProgress: view.update });
    await text.flush();
    view.finish();
    if (lines) {
      const { removed: _removed, ...rest } = report;
      await lines.end(rest);
    } else {
      for (const file of report.tempFiles) await out(`${verb} temp file ${file.path}\n`);
      for (const part of report.locations) {
        const reclaimed = part.reclaimedBytes > 0 ? `, ${formatBytes(part.reclaimedBytes)} given back to the filesystem` : '';
        const summary = part.collected
          ? `${part.location}: ${verb} ${part.removedCount} (${formatBytes(part.removedBytes)}), kept ${part.keptCount} (${formatBytes(part.keptBytes)})${reclaimed}`
          : `${part.location}: kept ${part.keptCount} (${formatBytes(part.keptBytes)})`;
        await out(`${summary}${part.note ? `: ${part.note}` : ''}\n`);
      }
      await out(
        `${options.dryRun ? 'Would remove' : 'Removed'} ${report.removedCount} blobs (${formatBytes(report.removedBytes)}) and ${report.tempFiles.length} stale temp files; ` +
          `kept ${report.keptCount} blobs (${formatBytes(report.keptBytes)})${report.restored ? `, ${report.restored} put back because they were used meanwhile` : ''}` +
          `${report.onlyCopies ? `, ${report.onlyCopies} kept as the only copy` : ''}\n`,
      );
    }
  } finally {
    await storage.close();
  }
  return 0;
}

/** A lake given on the command line: a config file (.yaml/.yml/.json) or a Disk folder. */
async function lakeArg(value: string, values: Values, target: boolean): Promise<HashKeyStorage<boolean>> {
  if (/\.(ya?ml|json)$/.test(value)) {
    const { storageFromConfig } = await import('../../config/load.js');
    return storageFromConfig(value);
  }
  // copies into a Disk are flushed once at the end (sync -f) rather than fsynced one by one, and
  // get no last-used mark (their mtime stands for it): one file created per blob, as cp does
  const bulk = target && !values.fsync ? { fsync: false, markOnWrite: false } : {};
  // the source must be a lake already; the target is made when new (a copy to a new drive: a
  // Disk lake; a Packed target is made first with `cairn init --packed`)
  if (!target || existsSync(join(value, PACKED_FILE)) || existsSync(join(value, CONFIG_NAME))) {
    return new HashKeyStorage(await lakeAt(value, target ? '--to' : '--from', values, bulk));
  }
  return new HashKeyStorage(new Disk(value, { ...diskOptions(values), ...bulk }));
}

export async function migrate(args: string[]): Promise<number> {
  const { values } = parse(args, 'migrate');
  const to = str(values, 'to');
  if (!to) throw new UsageError('usage: cairn migrate [--from LAKE] --to LAKE [--jobs 8]   (LAKE: a folder or a config file)');
  const from = str(values, 'from') ? await lakeArg(str(values, 'from')!, values, false) : await openStorage(values);
  const target = await lakeArg(to, values, true);
  const view = progress(values, 'migrate');
  try {
    const threads = int(values, 'threads', Math.min(4, availableParallelism()));
    const report = await copyAll(from, target, { jobs: int(values, 'jobs', 8), threads, onProgress: view.update });
    view.finish();
    if (values.json) await json(report);
    else {
      for (const failure of report.failed) await out(`FAILED ${failure.key}: ${failure.error}\n`);
      await out(
        `copied ${report.copied} (${formatBytes(report.copiedBytes)}), skipped ${report.skipped} already there (${formatBytes(report.skippedBytes)}), failed ${report.failed.length}\n`,
      );
    }
    return report.failed.length === 0 ? 0 : 1;
  } finally {
    await from.close();
    await target.close();
  }
}

export async function stats(args: string[]): Promise<number> {
  const { values } = parse(args, 'stats');
  const storage = await openStorage(values);
  try {
    if (values.reset) {
      clearStats(storage);
      if (!values.quiet) await out('Saved counters removed\n');
      return 0;
    }
    const snapshots = readStats(storage);
    const sum = sumStats(snapshots);
    if (values.json) {
      await json({ ...sum, processes: snapshots.map(({ host, pid, at }) => ({ host, pid, at })) });
      return 0;
    }
    if (snapshots.length === 0) {
      await out('No counters saved in this lake yet: programs save theirs with keepStats(storage) (see docs/cli.md)\n');
      return 0;
    }
    await out(`Counters saved by ${snapshots.length} process(es), the latest at ${snapshots[0]!.at}\n\n`);
    if (sum.levels.length > 0) {
      const rows = sum.levels.map((l) => [l.name, String(l.hits), String(l.misses), ratio(l.hits, l.misses), formatBytes(l.bytes), String(l.errors)]);
      await out(table([['LEVEL', 'HITS', 'MISSES', 'HIT RATE', 'BYTES', 'ERRORS'], ...rows]) + '\n\n');
    }
    const functions = Object.entries(sum.functions);
    if (functions.length > 0) {
      const rows = functions.map(([name, f]) => [name, String(f.hits), String(f.misses), ratio(f.hits, f.misses), String(f.errors ?? 0)]);
      await out(table([['FUNCTION', 'HITS', 'MISSES', 'HIT RATE', 'ERRORS'], ...rows]) + '\n');
    }
  } finally {
    await storage.close();
  }
  return 0;
}

function ratio(hits: number, misses: number): string {
  return hits + misses === 0 ? '-' : `${((100 * hits) / (hits + misses)).toFixed(1)}%`;
}
