// Reads a repo-tool repository with tuf-js: refreshes the metadata from a
// trusted root, then downloads and verifies each named target.
//
// usage: node check.mjs METADATA_URL TARGETS_URL TRUSTED_ROOT WORK_DIR NAME...
//
// On success prints {"ok": true, "targets": {NAME: {"length": N, "sha256": HEX}}}
// (length and sha256 computed from the downloaded bytes) and exits 0; on any
// failure prints {"ok": false, "error": ..., "target": NAME-or-null} and exits 1.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Updater } from 'tuf-js';

const [metadataBaseUrl, targetBaseUrl, trustedRoot, workDir, ...names] = process.argv.slice(2);
if (!workDir || names.length === 0) {
  process.stderr.write('usage: node check.mjs METADATA_URL TARGETS_URL TRUSTED_ROOT WORK_DIR NAME...\n');
  process.exit(2);
}

let current = null;
try {
  // tuf-js has no bootstrap option: the trusted root must already be in metadataDir.
  const metadataDir = join(workDir, 'metadata');
  const targetDir = join(workDir, 'targets');
  mkdirSync(metadataDir, { recursive: true });
  mkdirSync(targetDir, { recursive: true });
  copyFileSync(trustedRoot, join(metadataDir, 'root.json'));

  const updater = new Updater({
    metadataDir,
    metadataBaseUrl,
    targetDir,
    targetBaseUrl,
    config: { fetchRetry: 0, fetchTimeout: 10000 },
  });
  await updater.refresh();

  const targets = {};
  for (const name of names) {
    current = name;
    const info = await updater.getTargetInfo(name);
    if (info === undefined) {
      throw new Error(`target not found in the repository: ${name}`);
    }
    const path = await updater.downloadTarget(info);
    const bytes = readFileSync(path);
    targets[name] = { length: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }
  process.stdout.write(JSON.stringify({ ok: true, targets }) + '\n');
} catch (error) {
  // tuf-js's error classes leave .name as "Error"; the class name says what failed.
  const message = error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
  process.stdout.write(JSON.stringify({ ok: false, error: message, target: current }) + '\n');
  process.stderr.write(`tuf-js check failed${current ? ` for ${current}` : ''}: ${message}\n`);
  process.exit(1);
}
