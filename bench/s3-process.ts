/** The test S3 server (s3rver) in a process of its own (bench/s3-server.ts), for benches that must not share its event loop. */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export interface S3Process {
  endpoint: string;
  bucket: string;
  stop(): Promise<void>;
}

export async function startS3Process(): Promise<S3Process> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 's3-server.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`s3 server exited with ${code}`)));
  });
  const { endpoint, bucket } = JSON.parse(line) as { endpoint: string; bucket: string };
  return {
    endpoint,
    bucket,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.end();
      await exited;
    },
  };
}
