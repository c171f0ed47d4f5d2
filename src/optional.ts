/**
 * The clients of remote locations and native codecs are optional peer dependencies: a user of a
 * local Disk lake installs none of them. Each is loaded the first time it is needed; a missing one
 * is a MissingDependencyError that names the package to install.
 */
import { createRequire } from 'node:module';
import { MissingDependencyError } from './errors.js';

const require = createRequire(import.meta.url);

function missing(error: unknown, pkg: string): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((error as Error).message).includes(pkg);
}

/** `import(pkg)`, or a MissingDependencyError saying that `needed` (e.g. 'RedisLocation') needs it. */
export async function importOptional<T>(pkg: string, needed: string): Promise<T> {
  try {
    return (await import(pkg)) as T;
  } catch (error) {
    if (missing(error, pkg)) throw new MissingDependencyError(pkg, needed, { cause: error });
    throw error;
  }
}

/** `require(pkg)` for native addons loaded synchronously, with the same error. */
export function requireOptional<T>(pkg: string, needed: string): T {
  try {
    return require(pkg) as T;
  } catch (error) {
    if (missing(error, pkg)) throw new MissingDependencyError(pkg, needed, { cause: error });
    throw error;
  }
}
