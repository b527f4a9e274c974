// Runs `kimg` in-process for the archive tests, with an environment of its own.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { main } from '../../src/cli/index.ts';

interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

/** `kimg ARGS` in-process, with an environment of its own. */
export async function kimg(args: readonly string[], home: string): Promise<Result> {
  const [stdout, stderr] = [new PassThrough(), new PassThrough()];
  const out: string[] = [];
  const err: string[] = [];
  stdout.setEncoding('utf8').on('data', (s: string) => out.push(s));
  stderr.setEncoding('utf8').on('data', (s: string) => err.push(s));
  const env = {
    ...process.env,
    HOME: home,
    KIMG_STORE: '',
    DOCKER_CONFIG: join(home, 'none'),
    REGISTRY_AUTH_FILE: join(home, 'none.json'),
  };
  const status = await main(args, { stdout, stderr, stdin: Readable.from([]), env });
  return { status, stdout: out.join(''), stderr: err.join('') };
}

interface ImageLine {
  name: string;
  digest: string;
}

export async function storedImages(store: string, home: string): Promise<ImageLine[]> {
  const r = await kimg(['images', '--store', store, '-o', 'json'], home);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ImageLine);
}
