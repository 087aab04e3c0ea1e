#!/usr/bin/env node
// capmux command tool `keywords`: stdin {"text": string, "top"?: integer}
// stdout: one ToolResult object. capmux has already checked the arguments
// against inputSchema, but it does not fill in schema defaults: do that here.
'use strict';

const STOP = new Set(('a an and are as at be but by for from has have i in is it its ' +
  'my not of on or our so that the their them there this to was we were will with you your').split(' '));

function reply(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

let raw = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { raw += chunk; });
process.stdin.on('end', () => {
  try {
    const args = JSON.parse(raw || '{}');
    const top = args.top ?? 5;
    const counts = new Map();
    for (const word of args.text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []) {
      if (word.length > 2 && !STOP.has(word)) counts.set(word, (counts.get(word) ?? 0) + 1);
    }
    const words = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, top)
      .map(([word, count]) => ({ word, count }));
    reply({
      success: true,
      data: { words },
      display: { type: 'text', content: words.map((w) => `${w.word} (${w.count})`).join(', ') || 'no keywords' },
    });
  } catch (err) {
    // Expected failures: exit 0 with success:false, so the model reads a clean reason.
    reply({ success: false, error: `keywords failed: ${err.message}` });
  }
});
