#!/usr/bin/env node
// Presents solcjs (the npm `solc` package) with the slice of native solc's command-line
// surface that py-solc-x, brownie and slither use: `--version` and `--standard-json`.
//
// Why not wrap the `solcjs` CLI: it fails with EAGAIN on non-blocking stdin pipes, calls
// process.exit() right after an asynchronous write (cutting piped output at 64 KiB), prints
// `>>>` notices into stdout and refuses imports without --base-path. Calling the compiler
// module directly avoids all four: stdin is read synchronously with EAGAIN retried, output is
// written with blocking fs.writeSync, and imports are resolved by a callback confined to the
// directories the caller allowed.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require(process.env.FEDCOIN_SOLC_MODULE || 'solc');

function writeAll(fd, text) {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
}

function readStdin() {
  const chunks = [];
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5); continue; }
      if (e.code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseArgs(argv) {
  const opts = { roots: [process.cwd()], mode: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const takeValue = () => (a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]);
    if (a === '--version' || a === '-v') opts.mode = 'version';
    else if (a === '--standard-json') opts.mode = 'standard-json';
    else if (a.startsWith('--allow-paths') || a.startsWith('--base-path') || a.startsWith('--include-path')) {
      for (const p of takeValue().split(',')) if (p) opts.roots.push(path.resolve(p));
    } else if (a === '--help' || a === '-h') opts.mode = 'help';
    // Other flags (e.g. --optimize from callers that also pass settings in JSON) are ignored:
    // in standard-json mode the JSON input is authoritative, as with native solc.
  }
  return opts;
}

function makeImportCallback(roots) {
  return function findImports(importPath) {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((r) => path.join(r, importPath));
    for (const c of candidates) {
      const resolved = path.resolve(c);
      const allowed = roots.some((r) => resolved === r || resolved.startsWith(r + path.sep));
      if (allowed && fs.existsSync(resolved) && fs.statSync(resolved).isFile()) {
        return { contents: fs.readFileSync(resolved, 'utf8') };
      }
    }
    return { error: `File not found inside the allowed paths: ${importPath}` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.mode === 'version') {
    writeAll(1, `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return 0;
  }
  if (opts.mode === 'standard-json') {
    const input = readStdin();
    const output = solc.compile(input, { import: makeImportCallback(opts.roots) });
    writeAll(1, output + '\n');
    return 0;
  }
  writeAll(2, 'solc-launcher: supports only --version and --standard-json (solcjs behind a native-solc surface)\n');
  return opts.mode === 'help' ? 0 : 1;
}

process.exitCode = main();
