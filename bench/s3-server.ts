/**
 * Runs the test S3 server (s3rver) in a process of its own for the benchmarks, so that the
 * server does not share the measured process's event loop. Prints its address as one JSON line
 * and stops when its stdin closes.
 */
import { startS3 } from '../test/servers/s3.js';

const server = await startS3({ buckets: ['bench'] });
process.stdout.write(JSON.stringify({ endpoint: server.endpoint, bucket: server.bucket }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => {
  void server.destroy().then(() => process.exit(0));
});
