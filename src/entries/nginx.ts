/**
 * `cairn-lake/nginx`: a read-only mirror of a lake served over HTTP (nginx, any static server).
 * Needs the optional peer package `undici` (it ships its own types).
 */
export { Nginx, type NginxOptions } from '../locations/http/nginx.js';
export type { RetryOptions } from '../retry.js';
