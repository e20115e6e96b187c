// An independent demangler for the tests: the npm package
// gecko-profiler-demangle (Rust's rustc-demangle and cpp_demangle compiled
// to WebAssembly, as the Firefox profiler uses them).  Reads mangled names,
// one per line, on stdin; prints the demangled names, one per line.
// usage: node demangle_oracle.mjs PACKAGE_DIR < names
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.argv[2];
const bg = await import(pathToFileURL(path.join(dir, 'index_bg.js')).href);
const bytes = fs.readFileSync(path.join(dir, 'index_bg.wasm'));
const { instance } = await WebAssembly.instantiate(bytes, { './index_bg.js': bg });
bg.__wbg_set_wasm(instance.exports);
if (instance.exports.__wbindgen_start) instance.exports.__wbindgen_start();
const names = fs.readFileSync(0, 'utf8').split('\n');
if (names.length && names[names.length - 1] === '') names.pop();
process.stdout.write(names.map((n) => bg.demangle_any(n)).join('\n') + (names.length ? '\n' : ''));
