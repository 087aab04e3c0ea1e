#!/usr/bin/env node
// capmux command tool `sha256`.
//
// Reads one JSON object {"text": string} on stdin and prints the SHA-256 of
// the UTF-8 encoding of `text` as lowercase hex, in one JSON result object on
// stdout. Always exits 0.
'use strict';

const crypto = require('node:crypto');

function emit(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

function fail(message) {
  emit({ success: false, error: message });
}

function readStdin(callback) {
  if (process.stdin.isTTY) {
    callback(new Error('expected the tool arguments as one JSON object on stdin'));
    return;
  }
  const chunks = [];
  process.stdin.on('data', (chunk) => chunks.push(chunk));
  process.stdin.on('end', () => callback(null, Buffer.concat(chunks).toString('utf8')));
  process.stdin.on('error', (err) => callback(err));
}

function main(raw) {
  let args;
  try {
    args = raw.trim() === '' ? {} : JSON.parse(raw);
  } catch (err) {
    return fail(`stdin is not valid JSON: ${err.message}`);
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    return fail('the tool arguments must be a JSON object');
  }
  const unknown = Object.keys(args).filter((k) => k !== 'text').sort();
  if (unknown.length) return fail(`unknown argument(s): ${unknown.join(', ')}; allowed: text`);
  if (!Object.prototype.hasOwnProperty.call(args, 'text')) return fail('missing required argument(s): text');
  if (typeof args.text !== 'string') return fail("argument 'text' must be a string");

  const bytes = Buffer.from(args.text, 'utf8');
  const hex = crypto.createHash('sha256').update(bytes).digest('hex');
  emit({
    success: true,
    data: { algorithm: 'sha256', hex, bytes: bytes.length },
    display: { type: 'text', content: hex },
  });
}

readStdin((err, raw) => {
  if (err) return fail(err.message);
  try {
    main(raw);
  } catch (e) {
    fail(`sha256 failed unexpectedly: ${e && e.message ? e.message : String(e)}`);
  }
});
