// npm run keys -- create --name NAME --role viewer|clerk|officer|admin [--expires-in-days N] [--json]
//                 list [--json]
//                 revoke ID
// Works on DATABASE_URL or the embedded database. A key's secret is printed once, at creation.
import { readConfigOrExit } from '../config.ts';
import {
  type ApiKey,
  generateKey,
  insertKey,
  listKeys,
  ROLES,
  type Role,
  revokeKey,
} from '../platform/api-keys.ts';
import { VERIFIED_KEY_TTL_MS } from '../platform/auth.ts';
import { createPool, type Pool } from '../platform/database.ts';
import { openDatabaseTarget } from '../platform/database-target.ts';
import { migrateUp } from '../platform/migrations.ts';
import { argsOrExit, integerArg, parseArgs, UsageError } from './args.ts';

const USAGE =
  'usage: npm run keys -- create --name NAME --role viewer|clerk|officer|admin [--expires-in-days N] [--json]' +
  ' | list [--json] | revoke ID';
const DAY_MS = 24 * 60 * 60 * 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Command =
  | { name: 'create'; keyName: string; role: Role; expiresInDays: number | undefined; json: boolean }
  | { name: 'list'; json: boolean }
  | { name: 'revoke'; id: string };

function parseKeysArgs(argv: readonly string[]): Command {
  const [command, ...rest] = argv;
  if (command === 'create') {
    const args = parseArgs(rest, {
      name: { type: 'string' },
      role: { type: 'string' },
      'expires-in-days': { type: 'string' },
      json: { type: 'boolean' },
    });
    const keyName = args.name?.trim();
    if (!keyName || keyName.length > 100) throw new UsageError('--name must be 1–100 characters');
    if (!(ROLES as readonly string[]).includes(args.role ?? '')) {
      throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
    }
    const days = args['expires-in-days'];
    return {
      name: 'create',
      keyName,
      role: args.role as Role,
      expiresInDays: days === undefined ? undefined : integerArg('--expires-in-days', days, 1, 3650),
      json: args.json ?? false,
    };
  }
  if (command === 'list')
    return { name: 'list', json: parseArgs(rest, { json: { type: 'boolean' } }).json ?? false };
  if (command === 'revoke') {
    const [id, ...extra] = rest;
    if (id === undefined || !UUID.test(id)) throw new UsageError('revoke needs the id of a key (a UUID)');
    parseArgs(extra, {});
    return { name: 'revoke', id: id.toLowerCase() };
  }
  throw new UsageError(command === undefined ? 'a command is required' : `unknown command "${command}"`);
}

const when = (date: Date | null) => (date ? date.toISOString() : '-');

function describeKey(key: ApiKey): string {
  const state = key.revokedAt ? `revoked ${when(key.revokedAt)}` : `expires ${when(key.expiresAt)}`;
  return `${key.id}  ${key.prefix}  ${key.role.padEnd(7)}  ${key.name}  (created ${when(key.createdAt)}, last used ${when(key.lastUsedAt)}, ${state})`;
}

async function run(command: Command, pool: Pool, keyTag: string): Promise<number> {
  if (command.name === 'create') {
    const secret = generateKey(keyTag);
    const expiresAt =
      command.expiresInDays === undefined ? undefined : new Date(Date.now() + command.expiresInDays * DAY_MS);
    const key = (await insertKey(pool, secret, { name: command.keyName, role: command.role, expiresAt }))!;
    if (command.json) {
      console.log(
        JSON.stringify({ id: key.id, name: key.name, role: key.role, prefix: key.prefix, key: secret }),
      );
    } else {
      console.log(describeKey(key));
      console.log(`secret (shown only now, store it safely): ${secret}`);
    }
    return 0;
  }
  if (command.name === 'list') {
    const keys = await listKeys(pool);
    if (command.json) {
      const rows = keys.map((key) => ({
        id: key.id,
        name: key.name,
        role: key.role,
        prefix: key.prefix,
        created_at: key.createdAt.toISOString(),
        last_used_at: key.lastUsedAt?.toISOString() ?? null,
        expires_at: key.expiresAt?.toISOString() ?? null,
        revoked_at: key.revokedAt?.toISOString() ?? null,
      }));
      console.log(JSON.stringify(rows));
    } else {
      for (const key of keys) console.log(describeKey(key));
      if (keys.length === 0) console.log('no API keys');
    }
    return 0;
  }
  if (!(await revokeKey(pool, command.id))) {
    console.error(`keys: no API key has the id ${command.id}`);
    return 1;
  }
  console.log(
    `revoked ${command.id}; running services refuse it within ${VERIFIED_KEY_TTL_MS / 1000} seconds`,
  );
  return 0;
}

async function main(argv: readonly string[]): Promise<void> {
  const command = argsOrExit('keys', USAGE, () => parseKeysArgs(argv));
  const config = readConfigOrExit();
  const target = await openDatabaseTarget(config, { log: (_details, message) => console.error(message) });
  let code = 1;
  try {
    await migrateUp(target.url);
    const pool = createPool(target.url, config.database, () => {});
    try {
      code = await run(command, pool, config.auth.keyTag);
    } finally {
      await pool.end();
    }
  } finally {
    await target.stop();
  }
  process.exit(code);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`keys failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
