// node-semver's parse and compare (npm `semver`, pinned in tests/advisory/package.json), for
// tests/advisory/differential.rs. stdin: `a<TAB>b` lines; stdout: one token a line, `-1`, `0`
// or `1` (semver.compare), or `invalid-a` / `invalid-b` (semver.parse returned null).
'use strict'
const semver = require('semver')
const lines = require('fs').readFileSync(0, 'utf8').split('\n')
lines.pop()
const out = lines.map((line) => {
  const tab = line.indexOf('\t')
  const a = semver.parse(line.slice(0, tab))
  if (!a) return 'invalid-a'
  const b = semver.parse(line.slice(tab + 1))
  if (!b) return 'invalid-b'
  return String(semver.compare(a, b))
})
process.stdout.write(out.join('\n') + '\n')
