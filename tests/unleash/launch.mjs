// Starts a real Unleash server for medic's end-to-end tests (tests/e2e/unleash.rs).
//
// unleash-server is installed outside the repository by scripts/deps.d/20-unleash; its
// directory comes in UNLEASH_DIR. The test passes the rest in the environment:
//   DATABASE_URL           postgres://user@127.0.0.1:port/db of a throwaway cluster
//   HTTP_PORT              free 127.0.0.1 port to listen on
//   INIT_ADMIN_API_TOKENS  the admin token the test (and the step under test) uses
// The process exits when its stdin closes, so a test that dies without running its
// destructors does not leave an Unleash behind.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.UNLEASH_DIR;
if (!dir) {
  console.error('launch.mjs: UNLEASH_DIR is not set (run scripts/install-test-deps)');
  process.exit(2);
}
const entry = join(dir, 'node_modules', 'unleash-server', 'dist', 'lib', 'server-impl.js');
const { start } = await import(pathToFileURL(entry).href);

const unleash = await start({
  databaseUrl: process.env.DATABASE_URL,
  db: { ssl: false },
  server: { host: '127.0.0.1', port: Number(process.env.HTTP_PORT) },
  // The machines have no network beyond package registries: no phoning home.
  versionCheck: { enable: false },
  telemetry: false,
  logLevel: process.env.LOG_LEVEL || 'warn',
});
console.log(`unleash ready on 127.0.0.1:${process.env.HTTP_PORT}`);

const stop = async () => {
  try {
    await unleash.stop();
  } finally {
    process.exit(0);
  }
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
