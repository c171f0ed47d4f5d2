/**
 * `cairn-lake/s3`: a lake in an S3 bucket (AWS, MinIO, any S3 server). Needs the optional peer
 * packages `@aws-sdk/client-s3` and `@aws-sdk/lib-storage` (they ship their own types).
 */
export { S3, type S3Options } from '../locations/s3/s3.js';
export type { RetryOptions } from '../retry.js';
