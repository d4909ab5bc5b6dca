// A tiny HTTP app, the kind every Node.js image runs, used by drainit's examples and its
// rolling-restart benchmark (bench/rolling-restart). Built-in `http` only: no npm packages.
//
// It is started by `npm start`, so the process chain is npm -> sh -c "node server.js" -> node,
// exactly what an init has to deal with in a real image: the stop signal must reach node, and
// node must be allowed to finish after npm and the shell are gone.
//
// Environment:
//   PORT=3000       the port to listen on (all interfaces; HOST=127.0.0.1 to narrow it).
//   GRACEFUL=1      install a SIGTERM handler that stops accepting connections, closes idle
//                   keep-alive sockets, lets requests in flight finish, then exits 0.
//                   Unset (the default): no handler, so node dies at once on SIGTERM, as many
//                   real apps do.
//
// Routes:
//   GET /           200 "hello from <pid>"; `?delay=MS` answers after MS milliseconds (max 10 s).
//   GET /readyz     the app serving its own readiness, for inits that have no readiness endpoint
//                   (tini, dumb-init, catatonit): 200 while running; with GRACEFUL=1, 503 once
//                   SIGTERM came, while the server closes.
//
// There is deliberately NO shutdown delay in here ("sleep 5 before closing"): holding SIGTERM
// until the load balancer has stopped sending traffic is drainit's job (--drain-delay), so that
// every app gets it without code of its own.
'use strict';

const http = require('http');

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || undefined;
const graceful = ['1', 'true', 'yes', 'on'].includes((process.env.GRACEFUL || '').toLowerCase());
let closing = false;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://app');
  if (url.pathname === '/readyz') {
    const ok = !closing;
    reply(res, ok ? 200 : 503, ok ? 'ok\n' : 'closing\n');
    return;
  }
  if (url.pathname !== '/') {
    reply(res, 404, 'not found\n');
    return;
  }
  const delay = Math.min(Math.max(Number(url.searchParams.get('delay')) || 0, 0), 10000);
  const answer = () => reply(res, 200, `hello from ${process.pid}\n`);
  if (delay > 0) setTimeout(answer, delay);
  else answer();
});

function reply(res, status, body) {
  const headers = { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) };
  // While closing, tell kept-alive clients not to send another request on this socket.
  if (closing) headers.Connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
}

// Long-lived keep-alive connections (a load balancer's pool) must not outlive us by default.
server.keepAliveTimeout = 5000;

server.listen(port, host, () => {
  console.log(`node-app: pid ${process.pid} listening on ${host || '*'}:${port}` +
    (graceful ? ' (graceful SIGTERM handler)' : ' (no SIGTERM handler)'));
});

if (graceful) {
  process.on('SIGTERM', () => {
    if (closing) return;
    closing = true;
    console.log(`node-app: pid ${process.pid} got SIGTERM: closing`);
    // Stop accepting; the callback runs once every connection has ended.
    server.close(() => {
      console.log(`node-app: pid ${process.pid} closed: exiting`);
      process.exit(0);
    });
    // Idle keep-alive sockets would otherwise hold close() open until they time out; busy
    // ones get `Connection: close` on their current response (see reply) and end after it.
    server.closeIdleConnections();
  });
}
