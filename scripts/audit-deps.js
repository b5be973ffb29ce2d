// Audits the production dependencies against the npm advisory service (`npm audit --omit=dev`).
//
// - A high or critical advisory fails (exit 1), naming each package, its advisories and whether a fix
//   is available.
// - When the advisory service cannot be reached or answers with an error (some networks allow the
//   registry's package downloads but not its audit endpoint), one line says the audit could not be run
//   and why, and the step passes — unless HANDOVER_REQUIRE_AUDIT=true, then it fails.
// - Any other failure of npm audit (no lockfile, a broken install) fails.
//
// The registry is npm's own setting (`npm_config_registry`, .npmrc), as for every other npm command.
import { spawnSync } from 'node:child_process';

const FAILING = ['high', 'critical'];
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ERR_SOCKET_TIMEOUT',
  'FETCH_ERROR',
]);
const required = process.env.HANDOVER_REQUIRE_AUDIT === 'true';

const npm = spawnSync('npm', ['audit', '--omit=dev', '--audit-level=high', '--json'], { encoding: 'utf8', timeout: 180_000, maxBuffer: 64 * 1024 * 1024 });

let report;
try {
  report = JSON.parse(npm.stdout);
} catch {
  report = undefined;
}

const counts = report?.metadata?.vulnerabilities;
if (!counts) {
  const reason = report?.message ?? report?.error?.summary ?? npm.error?.message ?? lastLine(npm.stderr) ?? `npm audit exited with ${npm.status} and no report`;
  // Only the advisory service being out of reach may pass: an answer with an HTTP status, a network
  // error, or npm running out of time. Anything else (no lockfile, a broken install) is a failure.
  const code = report?.code ?? report?.error?.code ?? npm.error?.code;
  const unreachable =
    typeof report?.statusCode === 'number' ||
    NETWORK_ERRORS.has(code) ||
    [...NETWORK_ERRORS].some((c) => String(reason).includes(c)) ||
    /^request to \S+ failed/.test(String(reason));
  if (!unreachable) {
    console.log(`dependency audit failed: ${reason}`);
    process.exit(1);
  }
  console.log(`dependency audit could not be run: ${reason}${required ? '' : ' (not required here; HANDOVER_REQUIRE_AUDIT=true makes this fail)'}`);
  process.exit(required ? 1 : 0);
}

const failing = Object.values(report.vulnerabilities ?? {}).filter((v) => FAILING.includes(v.severity));
if (failing.length === 0) {
  const others = Object.entries(counts)
    .filter(([severity, n]) => severity !== 'total' && n > 0)
    .map(([severity, n]) => `${n} ${severity}`);
  console.log(
    `dependency audit: no high or critical advisories in production dependencies${others.length ? ` (${others.join(', ')}: see npm audit --omit=dev)` : ''}`,
  );
  process.exit(0);
}

console.log(`dependency audit: ${failing.length} production ${failing.length === 1 ? 'dependency has' : 'dependencies have'} high or critical advisories`);
for (const v of failing) {
  const advisories = (v.via ?? []).filter((via) => typeof via === 'object').map((via) => `${via.title} (${via.url}; affects ${via.range})`);
  const through = (v.via ?? []).filter((via) => typeof via === 'string');
  const fix =
    v.fixAvailable === false
      ? 'no fix available'
      : v.fixAvailable === true
        ? 'fix: npm audit fix'
        : `fix: ${v.fixAvailable.name}@${v.fixAvailable.version}${v.fixAvailable.isSemVerMajor ? ' (major)' : ''}`;
  console.log(`- ${v.name} ${v.range} installed [${v.severity}]: ${[...advisories, ...through.map((name) => `through ${name}`)].join('; ')}; ${fix}`);
}
process.exit(1);

function lastLine(text) {
  const lines = (text ?? '')
    .split('\n')
    .map((line) => line.replace(/^npm (error|warn|ERR!) /, '').trim())
    .filter((line) => line && !line.startsWith('A complete log') && !line.includes('Unknown user config'));
  return lines.at(-1);
}
