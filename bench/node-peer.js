// node-peer.js: the minimal Node.js webhook handler bench/ingest.py measures
// wabiz-receiver against (bench/README.md, "Ingest"): node's http, the
// X-Hub-Signature-256 HMAC with crypto, JSON.parse, message and status ids
// deduplicated in a Map, each accepted change appended to a file as a line.
//
//   node bench/node-peer.js --secret S --file F [--fsync]
//
// Without --fsync it appends with no fsync, as such handlers are usually
// written (an answered delivery can be lost at a power cut); with --fsync the
// requests that arrived together wait for one fdatasync of their appends
// before they are answered (group commit, as the receiver does). Prints
// "listening PORT" once it listens on 127.0.0.1 (any free port).
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const secret = arg('--secret');
const file = arg('--file');
const syncing = args.includes('--fsync');
if (!secret || !file) {
  console.error('usage: node-peer.js --secret S --file F [--fsync]');
  process.exit(2);
}

const fd = fs.openSync(file, 'a', 0o600);
const seen = new Map();
let waiting = []; // answers waiting for the next fdatasync
let syncScheduled = false;

function flush() {
  syncScheduled = false;
  const batch = waiting;
  waiting = [];
  fs.fdatasync(fd, (err) => {
    for (const res of batch) {
      res.statusCode = err ? 500 : 200;
      res.end();
    }
  });
}

function accept(body) {
  const envelope = JSON.parse(body);
  const lines = [];
  for (const entry of envelope.entry || []) {
    for (const change of entry.changes || []) {
      const value = change.value || {};
      const fresh = (list, key) => (list || []).filter((item) => {
        const id = key(item);
        if (seen.has(id)) return false;
        seen.set(id, Date.now());
        return true;
      });
      value.messages = fresh(value.messages, (m) => 'm' + m.id);
      value.statuses = fresh(value.statuses, (s) => 's' + s.id + s.status);
      if (value.messages.length > 0 || value.statuses.length > 0)
        lines.push(JSON.stringify({ field: change.field, value }));
    }
  }
  if (lines.length > 0)
    fs.writeSync(fd, lines.join('\n') + '\n');
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const header = req.headers['x-hub-signature-256'] || '';
    const mac = crypto.createHmac('sha256', secret).update(body).digest();
    const given = Buffer.from(header.replace(/^sha256=/, ''), 'hex');
    if (req.method !== 'POST' || given.length !== mac.length || !crypto.timingSafeEqual(given, mac)) {
      res.statusCode = 401;
      res.end();
      return;
    }
    try {
      accept(body.toString('utf8'));
    } catch (e) {
      res.statusCode = 400;
      res.end();
      return;
    }
    if (!syncing) {
      res.statusCode = 200;
      res.end();
      return;
    }
    waiting.push(res);
    if (!syncScheduled) {
      syncScheduled = true;
      setImmediate(flush);
    }
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  console.log('listening ' + server.address().port);
});
