import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from './ports.js';

/**
 * A TCP proxy on loopback in front of a server, to make it hang without touching it: while hung,
 * connections are accepted and held, but no byte goes either way (as a frozen process whose
 * kernel still takes connections). For servers that run in the test process (s3rver) and cannot
 * be stopped with SIGSTOP.
 */
export interface FaultProxy {
  readonly port: number;
  /** Stops every byte, on open and new connections alike. */
  hang(): void;
  /** Lets the bytes through again, and connects the connections taken meanwhile. */
  resume(): void;
  /** Cuts every connection and stops listening. */
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  const pairs: [Socket, Socket][] = [];
  const held: Socket[] = [];
  let hung = false;

  /** Copies `from` into `to`, pausing `from` while `to` is full or the proxy hangs. */
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk) || hung) from.pause();
    });
    to.on('drain', () => {
      if (!hung) from.resume();
    });
    from.on('end', () => to.end());
    from.on('error', () => to.destroy());
    from.on('close', () => to.destroy());
  };

  const open = (client: Socket): void => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    forward(client, upstream);
    forward(upstream, client);
    pairs.push([client, upstream]);
    client.resume();
  };

  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (hung) held.push(client);
    else open(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));

  return {
    port,
    hang: () => {
      hung = true;
      for (const [client, upstream] of pairs) {
        client.pause();
        upstream.pause();
      }
    },
    resume: () => {
      hung = false;
      for (const [client, upstream] of pairs) {
        if (!client.destroyed) client.resume();
        if (!upstream.destroyed) upstream.resume();
      }
      for (const client of held.splice(0)) if (!client.destroyed) open(client);
    },
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
