import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface HealthChecks {
  /** The process is alive and not wedged. */
  live(): boolean;
  /** The process can do its job now (connections up). */
  ready(): Promise<{ ready: boolean; reason?: string }>;
}

/** /healthz, /readyz and Prometheus /metrics on one port. */
export function startHealthServer(port: number, registry: Registry, checks: HealthChecks): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    if (path === '/healthz') {
      reply(checks.live() ? 200 : 503, checks.live() ? 'ok\n' : 'unhealthy\n');
    } else if (path === '/readyz') {
      checks.ready().then(
        (result) =>
          reply(result.ready ? 200 : 503, result.ready ? 'ready\n' : `not ready: ${result.reason ?? ''}\n`),
        (error: Error) => reply(503, `not ready: ${error.message}\n`),
      );
    } else if (path === '/metrics') {
      registry.metrics().then(
        (body) => reply(200, body, registry.contentType),
        (error: Error) => reply(500, `${error.message}\n`),
      );
    } else {
      reply(404, 'not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve(server));
  });
}
