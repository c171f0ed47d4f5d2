import { statfsSync } from 'node:fs';
import { ConfigError } from '../../errors.js';

/**
 * Filesystem types (statfs `f_type`) on which SQLite's locks cannot be trusted: its WAL mode needs
 * shared memory between the processes of one machine and POSIX locks that mean what they say,
 * which network filesystems do not give.
 */
const NETWORK_FILESYSTEMS = new Map<number, string>([
  [0x6969, 'NFS'],
  [0x517b, 'SMB'],
  [0xff534d42, 'CIFS'],
  [0xfe534d42, 'SMB2'],
  [0x564c, 'NCP'],
  [0x47504653, 'GPFS'],
  [0x0bd00bd0, 'Lustre'],
  [0x00c36400, 'CephFS'],
  [0x6b414653, 'AFS'],
  [0x5346414f, 'AFS'],
]);

/** The name of the network filesystem with this statfs type, or null for any other type. */
export function networkFilesystemName(type: number | bigint): string | null {
  return NETWORK_FILESYSTEMS.get(Number(type)) ?? null;
}

/**
 * Throws ConfigError when `dir` is on a network filesystem that statfs recognises. A FUSE mount
 * (sshfs, say) reports only "FUSE" and is let through: the docs say where a store may live.
 */
export function assertLocalFilesystem(dir: string, what: string): void {
  let type: number | bigint;
  try {
    type = statfsSync(dir).type;
  } catch {
    return; // statfs unavailable (not Linux, say): nothing to detect with
  }
  const network = networkFilesystemName(type);
  if (network !== null) {
    throw new ConfigError(
      `${what}: ${dir} is on ${network}, a network filesystem; an embedded database needs the locks and shared memory of a local filesystem. Keep it on a local disk (use Disk for a shared lake)`,
    );
  }
}
