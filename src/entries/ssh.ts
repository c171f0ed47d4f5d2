/**
 * `cairn-lake/ssh`: a lake on an SSH server, over SFTP or SCP. Needs the optional peer package
 * `ssh2`; its types are `@types/ssh2` (a dev dependency of a TypeScript project that checks
 * library declarations, `skipLibCheck: false`).
 */
export { SFTP, type SFTPOptions } from '../locations/ssh/sftp.js';
export { SCP, type SCPOptions } from '../locations/ssh/scp.js';
export type { SSHOptions } from '../locations/ssh/ssh-common.js';
export type { RetryOptions } from '../retry.js';
