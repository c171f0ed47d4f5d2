/**
 * The recipes of tarn's README, run on local folders under ./demo-lake (no servers needed):
 *
 *   npm install && npm run demo
 *
 * Each step prints what it did. The folders are left in place afterwards so you can look at
 * the layout (`config.yml`, `ab/cdef…` blobs, `tools/labels`, `tools/usage`).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { Disk, Fanout, HashKeyStorage, Level, Levels, Memory, Small } from '../src/index.js';

const base = resolve(process.argv[2] ?? 'demo-lake');
rmSync(base, { recursive: true, force: true });
mkdirSync(base, { recursive: true });
const at = (name: string) => join(base, name);
const show = (path: string) => relative(process.cwd(), path) || '.';
const short = (key: string) => `${key.slice(0, 12)}…`;
let step = 0;
const say = (title: string) => console.log(`\n${++step}. ${title}`);

// 1. A simple datalake: values are stored under their sha256
say('A simple datalake on a local folder');
const storage = new HashKeyStorage(at('lake'));
const scan = at('scan-001.png');
writeFileSync(scan, randomBytes(3 * 1024 * 1024));
const fileKey = (await storage.write(scan))!;
console.log(`   wrote the file ${show(scan)} (3 MiB): key ${short(fileKey)}`);
const bytesKey = (await storage.write(Buffer.from('my-bytes'), { labels: ['notes'] }))!;
console.log(`   wrote 8 bytes with the label "notes": key ${short(bytesKey)}`);
async function* camera() {
  for (let frame = 0; frame < 20; frame++) yield randomBytes(256 * 1024);
}
const streamKey = (await storage.write(Readable.from(camera())))!;
console.log(`   wrote a 5 MiB stream, hashed as it was stored: key ${short(streamKey)}`);
await storage.read(fileKey, (value) => console.log(`   read ${short(fileKey)}: a local file at ${show(value.path!)}, ${value.size} bytes`));
console.log(`   readBytes(${short(bytesKey)}) = "${(await storage.readBytes(bytesKey))!.toString()}"`);
for await (const { key, meta } of storage.contents()) {
  console.log(`   contents: ${short(key)} ${String(meta.size).padStart(8)} bytes, labels ${JSON.stringify(meta.labels)}, last used ${meta.lastUsed?.toISOString()}`);
}

// 2. Fanout: the second disk takes over when the first is full
say('Fanout: two disks, the second used once the first is full (first limited to 4 MB)');
const hdd1 = new Disk(at('hdd1'), { maxSize: '4MB' });
const hdd2 = new Disk(at('hdd2'));
const fanout = new HashKeyStorage(new Fanout(hdd1, hdd2));
for (let i = 0; i < 3; i++) {
  const key = (await fanout.write(randomBytes(1_500_000)))!;
  const where = (await hdd1.read(key)) ? 'hdd1' : 'hdd2';
  console.log(`   1.5 MB value ${short(key)} went to ${where}`);
}

// 3. Lazy migration: read from the old disk, copy into the new one on the way
say('Levels: lazy migration from an old disk to a new one (copy-on-read)');
const oldDisk = new Disk(at('old-hdd'));
const newDisk = new Disk(at('new-hdd'));
const oldKey = (await new HashKeyStorage(oldDisk).write(Buffer.from('an old result')))!;
console.log(`   the new disk has ${short(oldKey)}: ${(await newDisk.read(oldKey)) !== null}`);
const migrating = new HashKeyStorage(new Levels(newDisk, oldDisk));
await migrating.readBytes(oldKey);
console.log(`   after one read through Levels(new, old), the new disk has it: ${(await newDisk.read(oldKey)) !== null}`);

// 4. Cache levels: memory and SSD in front of a slow store; only the slow store is written
say('Levels: memory and SSD caches in front of a slow NFS store');
const memory = new Memory({ maxSize: '64MB' });
const ssd = new Disk(at('fast-ssd'));
const nfs = new Disk(at('slower-nfs'));
const cached = new HashKeyStorage(new Levels(new Level(memory, { write: false }), new Level(ssd, { write: false }), nfs));
const featureKey = (await cached.write(randomBytes(64 * 1024)))!;
const where = async () => `memory=${(await memory.read(featureKey)) !== null} ssd=${(await ssd.read(featureKey)) !== null} nfs=${(await nfs.read(featureKey)) !== null}`;
console.log(`   after the write: ${await where()}`);
await cached.readBytes(featureKey);
console.log(`   after one read:  ${await where()}`);

// 5. Small values only in the fast level
say('Small: only values up to 100 KiB go to the in-memory level');
const smallCache = new Memory();
const small = new HashKeyStorage(new Levels(new Small(smallCache, { maxSize: 100 * 1024 }), at('hdd-for-small')));
const tiny = (await small.write(randomBytes(10 * 1024)))!;
const huge = (await small.write(randomBytes(1024 * 1024)))!;
console.log(`   10 KiB value in memory: ${(await smallCache.read(tiny)) !== null}; 1 MiB value in memory: ${(await smallCache.read(huge)) !== null}`);

const files = readdirSync(at('lake'), { recursive: true }).length;
console.log(`\nDone. ${files} files and folders under ${show(at('lake'))}; every folder above is under ${show(base)}.`);
