// A small Node service whose calls to two dependencies go through real opossum breakers, exported
// by opossum-prometheus on /metrics exactly as a team would wire it (no extra listeners before it).
// The breakers follow the directive's policy as closely as opossum allows (5 failures, then open
// for 60 s: volumeThreshold 5, every call of the rolling window failed), time-compressed by FACTOR.
//
//   node service.js PORT FACTOR
//   GET  /call/<dep>   -> 200 (success), 503 (failure or rejected)
//   POST /control      {"dep": "db", "fail": 1.0}   the dependency's failure probability
//   GET  /events       every breaker event the service saw, with its time: [{t, name, event}]
//   GET  /metrics      opossum-prometheus' exposition
'use strict';
const http = require('http');
const CircuitBreaker = require('opossum');
const PrometheusMetrics = require('opossum-prometheus');

const port = Number(process.argv[2]);
const factor = Number(process.argv[3] || 1);
const fail = { db: 0, auth: 0 };
const events = [];

function dependency (name) {
  return () => new Promise((resolve, reject) => {
    if (Math.random() < fail[name]) reject(new Error(`${name} failed`));
    else resolve('ok');
  });
}

const options = {
  volumeThreshold: 5,
  errorThresholdPercentage: 99.9, // opossum compares with '>': 100 would never trip
  rollingCountTimeout: 60000 / factor,
  resetTimeout: 60000 / factor,
  timeout: 1000
};
const breakers = {};
for (const name of Object.keys(fail)) {
  breakers[name] = new CircuitBreaker(dependency(name), { ...options, name });
}
const prometheus = new PrometheusMetrics({ circuits: Object.values(breakers) });
// The service's own record of what happened, attached after the exporter (which therefore does not
// count half-open: opossum-prometheus only counts events that had listeners when it was added).
for (const breaker of Object.values(breakers)) {
  for (const event of ['open', 'close', 'halfOpen', 'success', 'failure', 'reject']) {
    breaker.on(event, () => events.push({ t: Date.now() / 1000, name: breaker.name, event }));
  }
}

function reply (res, status, body, type = 'application/json') {
  res.writeHead(status, { 'Content-Type': type });
  res.end(body);
}

http.createServer((req, res) => {
  if (req.url === '/metrics') return reply(res, 200, prometheus.metrics, 'text/plain; version=0.0.4');
  if (req.url === '/events') return reply(res, 200, JSON.stringify(events));
  if (req.method === 'POST' && req.url === '/control') {
    let body = '';
    req.on('data', chunk => { body += chunk; });
    req.on('end', () => {
      const { dep, fail: p } = JSON.parse(body);
      fail[dep] = Number(p);
      reply(res, 200, '{}');
    });
    return;
  }
  const m = req.url.match(/^\/call\/(\w+)$/);
  if (!m || !breakers[m[1]]) return reply(res, 404, '{}');
  breakers[m[1]].fire().then(() => reply(res, 200, '{}'), () => reply(res, 503, '{}'));
}).listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
