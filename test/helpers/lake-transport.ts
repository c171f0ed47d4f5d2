/**
 * Checks shared by the lake locations over a transport (SFTP, SCP): tarn's old folder blobs.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Location } from '../../src/index.js';
import { bytesSource, expectStored, sha256 } from '../conformance.js';

/** A folder blob (`<key>/data`, levels [1, -1]) under `root` is read, kept by a write (it is intact) and deleted. */
export async function expectFolderBlobHandled(remote: Location, root: string): Promise<void> {
  const bytes = randomBytes(3000);
  const key = sha256(bytes);
  await remote.has!(key); // creates the lake
  const folder = join(root, key.slice(0, 2), key.slice(2));
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'data'), bytes);
  expect((await remote.readBytes!(key))!.equals(bytes)).toBe(true);
  expect((await (await remote.read(key))!.bytes()).equals(bytes)).toBe(true);
  await expectStored(remote.write(key, bytesSource(bytes)), key);
  expect(readFileSync(join(folder, 'data')).equals(bytes)).toBe(true);
  expect(await remote.delete(key)).toBe(true);
  expect(existsSync(folder)).toBe(false);
  expect(await remote.read(key)).toBeNull();
}
