#!/usr/bin/env node
// capmux command tool `json_query`.
//
// Reads one JSON object {"json": string, "path": string} on stdin, parses
// `json` and prints the value at `path` as one JSON result object on stdout.
// Path syntax: dot-separated keys and [n] array indexes, e.g. `a.b[0].c`;
// ["key.with.dots"] (a JSON string in brackets) for keys containing . [ or ];
// an empty path or `$` selects the whole document. Always exits 0.
'use strict';

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

function parseArgs(raw, allowed, required) {
  let args;
  try {
    args = raw.trim() === '' ? {} : JSON.parse(raw);
  } catch (err) {
    throw new Error(`stdin is not valid JSON: ${err.message}`);
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new Error('the tool arguments must be a JSON object');
  }
  const unknown = Object.keys(args).filter((k) => !allowed.includes(k)).sort();
  if (unknown.length) {
    throw new Error(`unknown argument(s): ${unknown.join(', ')}; allowed: ${allowed.join(', ')}`);
  }
  const missing = required.filter((k) => !Object.prototype.hasOwnProperty.call(args, k));
  if (missing.length) {
    throw new Error(`missing required argument(s): ${missing.join(', ')}`);
  }
  return args;
}

// Split a path into segments: {kind: 'key', key} or {kind: 'index', index},
// each with `text`, the segment as written (for error messages).
function parsePath(path) {
  const segments = [];
  let s = path.trim();
  if (s === '$') return segments;
  if (s.startsWith('$.')) s = s.slice(2);
  else if (s.startsWith('$[')) s = s.slice(1);
  let i = 0;
  let expectKey = true; // at the start or right after a '.'
  while (i < s.length) {
    const ch = s[i];
    if (ch === '[') {
      const close = findBracketEnd(s, i);
      if (close < 0) throw new Error(`invalid path '${path}': unclosed '[' at position ${i}`);
      const inner = s.slice(i + 1, close).trim();
      const text = s.slice(i, close + 1);
      if (/^\d+$/.test(inner)) {
        segments.push({ kind: 'index', index: Number(inner), text });
      } else if (inner.startsWith('"')) {
        let key;
        try {
          key = JSON.parse(inner);
        } catch (err) {
          throw new Error(`invalid path '${path}': bad quoted key ${text}`);
        }
        if (typeof key !== 'string') throw new Error(`invalid path '${path}': bad quoted key ${text}`);
        segments.push({ kind: 'key', key, text });
      } else {
        throw new Error(`invalid path '${path}': ${text} must be a non-negative integer index like [0] or a quoted key like ["a.b"]`);
      }
      i = close + 1;
      expectKey = false;
    } else if (ch === '.') {
      if (expectKey && segments.length > 0) throw new Error(`invalid path '${path}': empty key at position ${i}`);
      if (segments.length === 0 && i === 0) throw new Error(`invalid path '${path}': must not start with '.'`);
      i += 1;
      expectKey = true;
      if (i >= s.length) throw new Error(`invalid path '${path}': must not end with '.'`);
    } else {
      if (!expectKey) throw new Error(`invalid path '${path}': expected '.' or '[' at position ${i}`);
      let j = i;
      while (j < s.length && s[j] !== '.' && s[j] !== '[') j += 1;
      const key = s.slice(i, j);
      segments.push({ kind: 'key', key, text: key });
      i = j;
      expectKey = false;
    }
  }
  return segments;
}

function findBracketEnd(s, open) {
  let inString = false;
  for (let k = open + 1; k < s.length; k += 1) {
    const c = s[k];
    if (inString) {
      if (c === '\\') k += 1;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === ']') {
      return k;
    }
  }
  return -1;
}

function typeName(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

function describeKeys(obj) {
  const keys = Object.keys(obj);
  if (keys.length === 0) return 'it has no keys';
  const shown = keys.slice(0, 20).join(', ');
  return `available keys: ${shown}${keys.length > 20 ? `, … (${keys.length} in total)` : ''}`;
}

function resolve(doc, segments) {
  let current = doc;
  let where = ''; // the part of the path resolved so far
  for (const seg of segments) {
    const here = where === '' ? 'the document root' : `'${where}'`;
    if (Array.isArray(current)) {
      // An all-digit key after a dot (`a.0`) is accepted as an index too.
      const index = seg.kind === 'index' ? seg.index : (/^\d+$/.test(seg.key) ? Number(seg.key) : null);
      if (index === null) {
        throw new Error(`path segment '${seg.text}' not found: ${here} is an array (length ${current.length}); use an index like [0]`);
      }
      if (index >= current.length) {
        throw new Error(`path segment '${seg.text}' not found: index ${index} is out of range, ${here} is an array of length ${current.length}`);
      }
      current = current[index];
    } else if (current !== null && typeof current === 'object') {
      const key = seg.kind === 'key' ? seg.key : String(seg.index);
      if (!Object.prototype.hasOwnProperty.call(current, key)) {
        throw new Error(`path segment '${seg.text}' not found: ${here} has no key '${key}' (${describeKeys(current)})`);
      }
      current = current[key];
    } else {
      throw new Error(`path segment '${seg.text}' not found: ${here} is ${typeName(current)}, not an object or array`);
    }
    where = (where === '' || seg.text.startsWith('[')) ? where + seg.text : `${where}.${seg.text}`;
  }
  return current;
}

function main(raw) {
  const args = parseArgs(raw, ['json', 'path'], ['json', 'path']);
  if (typeof args.json !== 'string') return fail("argument 'json' must be a string containing a JSON document");
  if (typeof args.path !== 'string') return fail("argument 'path' must be a string such as 'a.b[0].c'");
  let doc;
  try {
    doc = JSON.parse(args.json);
  } catch (err) {
    return fail(`argument 'json' is not valid JSON: ${err.message}`);
  }
  const segments = parsePath(args.path);
  const value = resolve(doc, segments);
  emit({
    success: true,
    data: value,
    display: { type: 'json', content: JSON.stringify(value, null, 2) },
  });
}

readStdin((err, raw) => {
  if (err) return fail(err.message);
  try {
    main(raw);
  } catch (e) {
    fail(e && e.message ? e.message : String(e));
  }
});
