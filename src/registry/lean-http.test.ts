import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { after, describe, it } from 'node:test';
import { text } from 'node:stream/consumers';
import { leanGet, type LeanRequestOptions } from './lean-http.ts';
import type { ChunkConsumer } from './pumped-body.ts';
import { threadGet, type ThreadRequestOptions } from './lean-thread.ts';

/** A TCP server that answers each connection with `answer(socket, request head)`. */
async function rawServer(
  answer: (socket: net.Socket, head: string) => void,
): Promise<{ url: URL; heads: string[]; close(): void }> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    const onData = (data: Buffer) => {
      head += data.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      heads.push(head);
      answer(socket, head);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}/v2/r/blobs/x`),
    heads,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const servers: { close(): void }[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function serve(answer: (socket: net.Socket, head: string) => void) {
  const s = await rawServer(answer);
  servers.push(s);
  return s;
}

function options(url: URL, extra: Partial<LeanRequestOptions> = {}): LeanRequestOptions {
  return { url, headers: {}, connect: { timeout: 5000 }, headersTimeoutMs: 5000, bodyTimeoutMs: 5000, ...extra };
}

/** Pumps the body, copying each chunk (the reader reuses its memory), optionally slowly. */
async function pumpAll(body: { pump(consumer: ChunkConsumer): Promise<void> }, slow = false): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  await body.pump((chunk) => {
    parts.push(Buffer.from(chunk));
    return slow && ++n % 3 === 0 ? new Promise((resolve) => setTimeout(resolve, 2)) : undefined;
  });
  return Buffer.concat(parts);
}

/** Writes `data` in pieces of `piece` bytes, so that framing crosses socket reads. */
function writeInPieces(socket: net.Socket, data: Buffer, piece: number, end = true): void {
  let at = 0;
  const next = () => {
    if (at >= data.length) {
      if (end) socket.end();
      return;
    }
    const slice = data.subarray(at, at + piece);
    at += piece;
    if (socket.write(slice)) setImmediate(next);
    else socket.once('drain', next);
  };
  next();
}

/** A GET as leanGet and threadGet both make it, with the options these cases change. */
type Get = (
  url: URL,
  extra?: { headersTimeoutMs?: number; bodyTimeoutMs?: number; signal?: AbortSignal },
) => Promise<{
  statusCode: number;
  body: Awaited<ReturnType<typeof leanGet>>['body'] | Awaited<ReturnType<typeof threadGet>>['body'];
}>;

/** What leanGet and threadGet must both do with a body: the same framing, errors and codes.
 * `closer` names who closes the connection. */
function bodyCases(get: Get, closer: string): void {
  it('reads a small (error) body as an ordinary stream', async () => {
    const json = '{"errors":[{"code":"BLOB_UNKNOWN"}]}';
    const s = await serve((socket) =>
      socket.end(
        `HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
      ),
    );
    const res = await get(s.url);
    assert.equal(res.statusCode, 404);
    assert.equal(await text(res.body), json);
  });

  it('fails a body cut short with UND_ERR_SOCKET, after handing on what arrived', async () => {
    const s = await serve((socket) => socket.end(`HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${'a'.repeat(400)}`));
    const res = await get(s.url);
    let received = 0;
    await assert.rejects(
      res.body.pump((chunk) => {
        received += chunk.length;
        return undefined;
      }),
      { code: 'UND_ERR_SOCKET' },
    );
    assert.equal(received, 400);
  });

  it('times out a server that never answers (headers) and one that stalls mid-body', async () => {
    const silent = await serve(() => undefined);
    await assert.rejects(get(silent.url, { headersTimeoutMs: 200 }), { code: 'UND_ERR_HEADERS_TIMEOUT' });
    const stalling = await serve((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'));
    const res = await get(stalling.url, { bodyTimeoutMs: 200 });
    await assert.rejects(pumpAll(res.body), { code: 'UND_ERR_BODY_TIMEOUT' });
  });

  it(`rejects with the signal’s reason when aborted mid-body, and ${closer} the connection`, async () => {
    let closed!: Promise<void>;
    const s = await serve((socket) => {
      closed = new Promise((resolve) => socket.on('close', () => resolve()));
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n${'c'.repeat(1000)}`);
    });
    const controller = new AbortController();
    const res = await get(s.url, { signal: controller.signal });
    const reason = new Error('stop');
    await assert.rejects(
      res.body.pump(() => {
        controller.abort(reason);
        return undefined;
      }),
      (err) => err === reason,
    );
    await closed;
  });

  it(`passes on a consumer’s failure and ${closer} the connection`, async () => {
    let closed!: Promise<void>;
    const s = await serve((socket) => {
      closed = new Promise((resolve) => socket.on('close', () => resolve()));
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'d'.repeat(100)}`);
    });
    const res = await get(s.url);
    const boom = new Error('sink full');
    await assert.rejects(
      res.body.pump(() => Promise.reject(boom)),
      (err) => err === boom,
    );
    assert.ok(res.body.destroyed);
    await closed;
  });
}

describe('leanGet', () => {
  bodyCases((url, extra) => leanGet(options(url, extra)), 'closes');

  it('sends one GET with the headers given and Connection: close, and pumps a Content-Length body intact', async () => {
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    const s = await serve((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\nDocker-Content-Digest: x\r\n\r\n`);
      writeInPieces(socket, payload, 70_000);
    });
    const res = await leanGet(options(s.url, { headers: { authorization: 'Bearer t', range: 'bytes=0-' } }));
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['docker-content-digest'], 'x');
    const got = await pumpAll(res.body, true);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(payload).digest('hex'));
    const head = s.heads[0] ?? '';
    assert.match(head, /^GET \/v2\/r\/blobs\/x HTTP\/1\.1\r\n/);
    assert.match(head, /\r\nauthorization: Bearer t\r\n/);
    assert.match(head, /\r\nrange: bytes=0-\r\n/);
    assert.match(head, /\r\nconnection: close\r\n/);
    assert.match(head, new RegExp(`\\r\\nhost: ${s.url.host}\\r\\n`));
  });

  it('decodes a chunked body whose chunk sizes and CRLFs straddle socket reads', async () => {
    const payload = randomBytes(500_000);
    const s = await serve((socket) => {
      const parts: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')];
      for (let at = 0; at < payload.length;) {
        const n = Math.min(payload.length - at, 1 + Math.floor(Math.random() * 40_000));
        parts.push(Buffer.from(`${n.toString(16)};ext=1\r\n`), payload.subarray(at, at + n), Buffer.from('\r\n'));
        at += n;
      }
      parts.push(Buffer.from('0\r\nx-trailer: y\r\n\r\n'));
      writeInPieces(socket, Buffer.concat(parts), 997, false);
    });
    const res = await leanGet(options(s.url));
    assert.ok((await pumpAll(res.body)).equals(payload));
  });

  it('reads a close-delimited body to the end of the connection', async () => {
    const payload = randomBytes(200_000);
    const s = await serve((socket) => {
      socket.write('HTTP/1.1 200 OK\r\n\r\n');
      writeInPieces(socket, payload, 50_000);
    });
    const res = await leanGet(options(s.url));
    assert.ok((await pumpAll(res.body)).equals(payload));
  });

  it('skips an interim 100 response and gives a body that came with the head', async () => {
    const s = await serve((socket) =>
      socket.end(
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nContent-Range: bytes 5-9/10\r\n\r\nhello',
      ),
    );
    const res = await leanGet(options(s.url));
    assert.equal(res.statusCode, 206);
    assert.equal((await pumpAll(res.body)).toString(), 'hello');
  });

  it('skips a few interim responses (100, 102, 103 with headers) before the real one', async () => {
    const s = await serve((socket) =>
      socket.end(
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n' +
          'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
      ),
    );
    const res = await leanGet(options(s.url));
    assert.equal(res.statusCode, 200);
    assert.equal((await pumpAll(res.body)).toString(), 'ok');
  });

  it('refuses a flood of interim responses, in one read or dribbled, without crashing the process', async () => {
    const interim = 'HTTP/1.1 100 Continue\r\n\r\n';
    // 100,000 interim responses at once: one socket read holds thousands of them.
    const burst = await serve((socket) => socket.end(interim.repeat(100_000)));
    await assert.rejects(leanGet(options(burst.url)), { code: 'UND_ERR_INVALID_ARG', message: /interim/ });
    // One per write, forever (until the client goes away).
    const dribble = await serve((socket) => {
      const timer = setInterval(() => socket.write(interim), 1);
      socket.on('close', () => clearInterval(timer));
    });
    await assert.rejects(leanGet(options(dribble.url)), { code: 'UND_ERR_INVALID_ARG', message: /interim/ });
  });

  it('holds the response head to a deadline: a server dribbling bytes does not reset it', async () => {
    const s = await serve((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nX-Slow: ');
      const timer = setInterval(() => socket.write('a'), 20);
      socket.on('close', () => clearInterval(timer));
    });
    await assert.rejects(leanGet(options(s.url, { headersTimeoutMs: 300 })), { code: 'UND_ERR_HEADERS_TIMEOUT' });
  });

  it('bounds trailers in number, line length and total size', async () => {
    const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n';
    const many = await serve((socket) => socket.end(`${chunked}${'X-T: 1\r\n'.repeat(1000)}\r\n`));
    await assert.rejects(pumpAll((await leanGet(options(many.url))).body), { code: 'HPE_HEADER_OVERFLOW' });
    const long = await serve((socket) => socket.end(`${chunked}X-T: ${'v'.repeat(10_000)}\r\n\r\n`));
    await assert.rejects(pumpAll((await leanGet(options(long.url))).body), { code: 'HPE_CHUNK_EXTENSIONS_OVERFLOW' });
    const big = await serve((socket) => socket.end(`${chunked}${`X-T: ${'v'.repeat(3000)}\r\n`.repeat(8)}\r\n`));
    await assert.rejects(pumpAll((await leanGet(options(big.url))).body), { code: 'HPE_HEADER_OVERFLOW' });
    const fine = await serve((socket) => socket.end(`${chunked}X-A: 1\r\nX-B:  2 \r\n\r\n`));
    assert.equal((await pumpAll((await leanGet(options(fine.url))).body)).toString(), 'ok');
  });

  it('stops at Content-Length even when the server sends more', async () => {
    const s = await serve((socket) =>
      socket.end(`HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n${'b'.repeat(10)}EXTRA-BYTES`),
    );
    const res = await leanGet(options(s.url));
    assert.equal((await pumpAll(res.body)).toString(), 'b'.repeat(10));
  });

  for (const [title, response, code] of [
    ['a head over 16 KiB', `HTTP/1.1 200 OK\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`, 'UND_ERR_HEADERS_OVERFLOW'],
    [
      'both Transfer-Encoding and Content-Length',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
      'HPE_INVALID_TRANSFER_ENCODING',
    ],
    [
      'two different Content-Lengths',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n',
      'HPE_UNEXPECTED_CONTENT_LENGTH',
    ],
    ['a gzip transfer coding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'UND_ERR_INVALID_ARG'],
    ['a header line without a name', 'HTTP/1.1 200 OK\r\n: nameless\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['bare LF line endings', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n\r\n\r\n', 'HPE_CR_EXPECTED'],
    ['a NUL in a header value', 'HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['an obs-fold continuation line', 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    [
      'a Content-Length with a tab after it',
      'HTTP/1.1 200 OK\r\nContent-Length: 0\t\r\n\r\n',
      'HPE_INVALID_CONTENT_LENGTH',
    ],
    ['101 Switching Protocols (no upgrade was asked)', 'HTTP/1.1 101 Switching\r\n\r\n', 'UND_ERR_INVALID_ARG'],
    ['a status line that is not HTTP/1.x', 'ICY 200 OK\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['no response at all', '', 'UND_ERR_SOCKET'],
  ] as const) {
    it(`refuses ${title} with ${code}`, async () => {
      const s = await serve((socket) => socket.end(response));
      await assert.rejects(leanGet(options(s.url)), { code });
    });
  }

  it('fails a malformed chunk size in the body', async () => {
    const s = await serve((socket) =>
      socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n'),
    );
    const res = await leanGet(options(s.url));
    await assert.rejects(pumpAll(res.body), { code: 'HPE_INVALID_CHUNK_SIZE' });
  });

  it('refuses request headers that would smuggle a line break', async () => {
    const s = await serve((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    assert.throws(() => leanGet(options(s.url, { headers: { authorization: 'Bearer a\r\nx-evil: 1' } })), {
      code: 'UND_ERR_INVALID_ARG',
    });
  });
});

describe('threadGet (the same GET on a blob thread)', () => {
  const threadOptions = (url: URL, extra: Partial<ThreadRequestOptions> = {}): ThreadRequestOptions => ({
    url,
    headers: {},
    connect: { timeout: 5000 },
    headersTimeoutMs: 5000,
    bodyTimeoutMs: 5000,
    ...extra,
  });

  bodyCases((url, extra) => threadGet(threadOptions(url, extra)), 'the thread closes');

  it('pumps a body intact through a slow consumer (the thread waits for its buffers back)', async () => {
    const payload = randomBytes(5 * 1024 * 1024 + 17);
    const s = await serve((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\nDocker-Content-Digest: x\r\n\r\n`);
      writeInPieces(socket, payload, 70_000);
    });
    const res = await threadGet(threadOptions(s.url, { headers: { authorization: 'Bearer t' } }));
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['docker-content-digest'], 'x');
    const got = await pumpAll(res.body, true);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(payload).digest('hex'));
    assert.match(s.heads[0] ?? '', /\r\nauthorization: Bearer t\r\n/);
    assert.ok(res.body.destroyed);
  });

  it('streams a large body intact to a slow reader (every buffer goes back to the thread)', async () => {
    const payload = randomBytes(5 * 1024 * 1024 + 17);
    const s = await serve((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`);
      writeInPieces(socket, payload, 70_000);
    });
    const res = await threadGet(threadOptions(s.url));
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) {
      chunks.push(chunk as Buffer);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const got = Buffer.concat(chunks);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(payload).digest('hex'));
  });

  it('resolves the host here, with the lookup given (its refusal is the error)', async () => {
    const s = await serve((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const named = new URL(s.url.href.replace('127.0.0.1', 'registry.test'));
    const lookup = ((host: string, _options: unknown, callback: (...args: unknown[]) => void) =>
      host === 'registry.test'
        ? callback(null, [{ address: '127.0.0.1', family: 4 }])
        : callback(
            Object.assign(new Error('refused'), { code: 'ERR_KIMG_ADDRESS_REFUSED' }),
          )) as unknown as NonNullable<ThreadRequestOptions['connect']['lookup']>;
    const res = await threadGet(threadOptions(named, { connect: { timeout: 5000, lookup } }));
    assert.equal((await pumpAll(res.body)).toString(), 'ok');
    assert.match(s.heads[0] ?? '', /\r\nhost: registry\.test:\d+\r\n/);
    const other = new URL(s.url.href.replace('127.0.0.1', 'elsewhere.test'));
    await assert.rejects(threadGet(threadOptions(other, { connect: { timeout: 5000, lookup } })), {
      code: 'ERR_KIMG_ADDRESS_REFUSED',
    });
  });
});
